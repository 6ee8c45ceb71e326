// Copy NiiVue's self-contained UMD bundle (it sets window.niivue; no network imports) into the
// package's static folder, where `seldinger serve` serves it from its own origin (CSP default-src 'self').
//
// Small patches are applied on the way (each must match exactly once in the pinned version, or
// the build fails; see docs/workstation.md, "Software WebGL"). `globalThis.seldingerStockNiivue
// = true` before the first Niivue is made restores NiiVue's own behaviour (every shader compiled
// at once, the gradient at every upload): the benchmark's baseline ("?baseline").
//
// 1. NiiVue recomputes a gradient texture of the background volume (a blur and a Sobel pass over
//    every slice) at each upload of the volume layers (each window change, each overlay). Only
//    the lit and gradient-opacity volume render shaders read it; the default render shader and
//    the slice shaders never do. Without a GPU (SwiftShader) the pass costs 3-5 s per upload, so
//    it is skipped while the default render shader is in use (no custom slice shader); switching
//    to a shader that reads it refreshes the layers (as NiiVue already does for
//    setVolumeRenderIllumination) and so computes it.
// 2. setGradientOpacity(>0) switches to the gradient shader but refreshes the layers only when
//    the illumination's gradient amount is > 0; with patch 1 it must refresh for an opacity > 0.
// 3. NiiVue's init compiles and links all its ~40 shader programs at once, each waited for
//    (getProgramParameter, getUniformLocation); without a GPU that is ~1 s before anything is
//    drawn, though a slice view needs a handful. A Shader now compiles its program on first use
//    (its program, its uniforms or use()): same program, same uniform locations, later. WebGL
//    state is untouched by compiling and linking, so compiling inside another operation is safe.
//    A shader whose texture units NiiVue sets at init gets that setting as a `lazySetup`,
//    run right after its compilation (the program bound before is bound again after it).
// 4. Shaders that init bound for nothing (the mesh shaders but the matcap's, the 2-D rectangle
//    outline, 3-D line and circle, the surface and mesh-picking shaders) are not bound there;
//    those whose texture units it sets but which a slice view never draws with (the 3-D
//    render shaders but the default one, the 2-D and V1 slice shaders, the colour bar's) get
//    that setting as a lazySetup. Left at init: the default render, picking, slice (mm),
//    rectangle, line and font shaders, which the first upload and draw need anyway.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const niivue = join(here, "node_modules", "@niivue", "niivue");
const source = join(niivue, "dist", "niivue.umd.js");
const vendor = join(here, "..", "src", "seldinger", "app", "web", "static", "vendor");
const version = JSON.parse(readFileSync(join(niivue, "package.json"), "utf8")).version;
const PINNED = "0.69.0";

const PATCHES = [
  {
    name: "gradient texture only for the render shaders that read it",
    from: "g===0&&(this.volumeTexture=i,this.gradientTexture=Ti({",
    to:
      "g===0&&(this.volumeTexture=i,this.gradientTexture=" +
      "!globalThis.seldingerStockNiivue&&this.renderShader===this.renderVolumeShader&&!this.customSliceShader" +
      "?this.gradientTexture:Ti({",
  },
  {
    name: "setGradientOpacity refreshes the gradient when it needs it",
    from: "this.gradientTextureAmount>0&&this.refreshLayers(this.volumes[0],0),this.drawScene()}overlayRGBA",
    to: "(this.gradientTextureAmount>0||A>0)&&this.refreshLayers(this.volumes[0],0),this.drawScene()}overlayRGBA",
  },
  {
    name: "shader programs compiled on first use",
    from:
      'class mA{constructor(I,A,g){G(this,"program");G(this,"uniforms",{});G(this,"isMatcap");' +
      'G(this,"isCrosscut");this.program=Ce(I,A,g);const C=/uniform[^;]+[ ](\\w+);/g,' +
      "Q=/uniform[^;]+[ ](\\w+);/,E=A.match(C),i=g.match(C);E&&E.forEach(o=>{const t=o.match(Q);" +
      "this.uniforms[t[1]]=-1}),i&&i.forEach(o=>{const t=o.match(Q);this.uniforms[t[1]]=-1});" +
      "for(const o in this.uniforms)this.uniforms[o]=I.getUniformLocation(this.program,o)}" +
      "use(I){I.useProgram(this.program)}}",
    to:
      "class mA{constructor(I,A,g){this.lazyGl=I;this.lazyVertex=A;this.lazyFragment=g;" +
      "this.lazyProgram=null;this.lazyUniforms=null;this.lazyAfter=null;this.isMatcap=void 0;this.isCrosscut=void 0;" +
      "globalThis.seldingerStockNiivue&&this.lazyCompile()}" +
      "lazyCompile(){if(this.lazyProgram!==null)return;const I=this.lazyGl,A=this.lazyVertex," +
      "g=this.lazyFragment,P=Ce(I,A,g),U={};const C=/uniform[^;]+[ ](\\w+);/g," +
      "Q=/uniform[^;]+[ ](\\w+);/,E=A.match(C),i=g.match(C);E&&E.forEach(o=>{const t=o.match(Q);" +
      "U[t[1]]=-1}),i&&i.forEach(o=>{const t=o.match(Q);U[t[1]]=-1});" +
      "for(const o in U)U[o]=I.getUniformLocation(P,o);this.lazyProgram=P;this.lazyUniforms=U;" +
      "if(this.lazyAfter){const f=this.lazyAfter,c=I.getParameter(I.CURRENT_PROGRAM);this.lazyAfter=null;f();I.useProgram(c)}}" +
      "lazySetup(f){this.lazyProgram===null?this.lazyAfter=f:f()}" +
      "get program(){return this.lazyCompile(),this.lazyProgram}" +
      "get uniforms(){return this.lazyCompile(),this.lazyUniforms}" +
      "use(I){I.useProgram(this.program)}}",
  },
  {
    name: "mesh shaders not bound at init",
    from:
      'g.shader.use(B),g.shader.isCrosscut=g.Name==="Crosscut",g.shader.isMatcap=g.Name==="Matcap",' +
      "g.shader.isMatcap&&B.uniform1i(g.shader.uniforms.matCap,5)}}",
    to:
      'g.shader.isCrosscut=g.Name==="Crosscut",g.shader.isMatcap=g.Name==="Matcap",' +
      "g.shader.isMatcap&&(g.shader.use(B),B.uniform1i(g.shader.uniforms.matCap,5))}}",
  },
  {
    name: "2-D shaders not bound at init",
    from: "const A=new mA(B,Ui,ee);A.use(B);const g=new mA(B,he,sQ);g.use(B);const C=new mA(B,De,sQ);C.use(B);" +
      "const Q=new mA(B,Fe,Ge);return Q.use(B),{rectShader:I,",
    to: "const A=new mA(B,Ui,ee);const g=new mA(B,he,sQ);g.use(B);const C=new mA(B,De,sQ);" +
      "const Q=new mA(B,Fe,Ge);return{rectShader:I,",
  },
  {
    name: "3-D render shaders but the default one set up at first use",
    from:
      "const E=new mA(I,hB,Qe);yB({gl:I,shader:E,renderDrawAmbientOcclusion:A,renderSilhouette:g,gradientOpacity:C});" +
      "const i=new mA(I,hB,ie);yB({gl:I,shader:i,gradientAmount:.3,renderDrawAmbientOcclusion:A,renderSilhouette:g," +
      "gradientOpacity:C}),I.uniform1i(i.uniforms.matCap,5),I.uniform1i(i.uniforms.gradient,6);const o=new mA(I,hB,oe);" +
      "return yB({gl:I,shader:o,renderDrawAmbientOcclusion:A,renderSilhouette:g,gradientOpacity:C})," +
      "I.uniform1i(o.uniforms.matCap,5),I.uniform1i(o.uniforms.gradient,6),{renderVolumeShader:Q,",
    to:
      "const E=new mA(I,hB,Qe);E.lazySetup(()=>yB({gl:I,shader:E,renderDrawAmbientOcclusion:A,renderSilhouette:g," +
      "gradientOpacity:C}));const i=new mA(I,hB,ie);i.lazySetup(()=>{yB({gl:I,shader:i,gradientAmount:.3," +
      "renderDrawAmbientOcclusion:A,renderSilhouette:g,gradientOpacity:C}),I.uniform1i(i.uniforms.matCap,5)," +
      "I.uniform1i(i.uniforms.gradient,6)});const o=new mA(I,hB,oe);return o.lazySetup(()=>{yB({gl:I,shader:o," +
      "renderDrawAmbientOcclusion:A,renderSilhouette:g,gradientOpacity:C}),I.uniform1i(o.uniforms.matCap,5)," +
      "I.uniform1i(o.uniforms.gradient,6)}),{renderVolumeShader:Q,",
  },
  {
    name: "2-D and V1 slice shaders set up at first use",
    from:
      "function ir(B,I){const A=new mA(B,oC,te);A.use(B),B.uniform1i(A.uniforms.volume,0),B.uniform1i(A.uniforms.colormap,1)," +
      "B.uniform1i(A.uniforms.overlay,2),B.uniform1i(A.uniforms.drawing,7),B.uniform1f(A.uniforms.drawOpacity,I);",
    to:
      "function ir(B,I){const A=new mA(B,oC,te);A.lazySetup(()=>{A.use(B),B.uniform1i(A.uniforms.volume,0)," +
      "B.uniform1i(A.uniforms.colormap,1),B.uniform1i(A.uniforms.overlay,2),B.uniform1i(A.uniforms.drawing,7)," +
      "B.uniform1f(A.uniforms.drawOpacity,I)});",
  },
  {
    name: "V1 slice shader set up at first use",
    from:
      "const C=new mA(B,oC,ae);return C.use(B),B.uniform1i(C.uniforms.volume,0),B.uniform1i(C.uniforms.colormap,1)," +
      "B.uniform1i(C.uniforms.overlay,2),B.uniform1i(C.uniforms.drawing,7),B.uniform1f(C.uniforms.drawOpacity,I),{slice2DShader:A,",
    to:
      "const C=new mA(B,oC,ae);return C.lazySetup(()=>{C.use(B),B.uniform1i(C.uniforms.volume,0)," +
      "B.uniform1i(C.uniforms.colormap,1),B.uniform1i(C.uniforms.overlay,2),B.uniform1i(C.uniforms.drawing,7)," +
      "B.uniform1f(C.uniforms.drawOpacity,I)}),{slice2DShader:A,",
  },
  {
    name: "colour bar shader set up at first use",
    from: "function ar(B){const I=new mA(B,re,ne);return I.use(B),B.uniform1i(I.uniforms.colormap,1),I}",
    to: "function ar(B){const I=new mA(B,re,ne);return I.lazySetup(()=>{I.use(B),B.uniform1i(I.uniforms.colormap,1)}),I}",
  },
  {
    name: "surface shader not bound at init",
    from: "function nr(B){const I=new mA(B,fe,Le);I.use(B);",
    to: "function nr(B){const I=new mA(B,fe,Le);",
  },
  {
    name: "mesh picking shader not bound at init",
    from: "this.pickingMeshShader=new mA(Q,eQ,Je),this.pickingMeshShader.use(Q),",
    to: "this.pickingMeshShader=new mA(Q,eQ,Je),",
  },
];

if (version !== PINNED) {
  throw new Error(`@niivue/niivue ${version} installed; the patches are written for ${PINNED} (npm ci)`);
}
let code = readFileSync(source, "utf8");
for (const patch of PATCHES) {
  const found = code.split(patch.from).length - 1;
  if (found !== 1) throw new Error(`patch "${patch.name}": expected 1 match, found ${found}`);
  code = code.replace(patch.from, () => patch.to);
}
mkdirSync(vendor, { recursive: true });
writeFileSync(join(vendor, "niivue.umd.js"), code);
console.log(`copied @niivue/niivue ${version} to ${join(vendor, "niivue.umd.js")} (${PATCHES.length} patches)`);
