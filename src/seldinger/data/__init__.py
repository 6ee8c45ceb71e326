"""Sample data: the LIDC-IDRI-0001 chest CT with its nodule (fetched, cached) and a phantom."""

from seldinger.data.phantom import thorax_phantom
from seldinger.data.sample import (
    SampleCase,
    SampleDataError,
    SampleUnavailableError,
    cache_dir,
    fetch_sample_ct,
    load_sample,
)

__all__ = [
    "SampleCase",
    "SampleDataError",
    "SampleUnavailableError",
    "cache_dir",
    "fetch_sample_ct",
    "load_sample",
    "thorax_phantom",
]
