"""Airway and oesophageal stents: lumen along the centreline, stenosis, sizing, designed
stents and moulds (issue 20)."""
