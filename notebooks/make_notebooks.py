"""Write the notebooks from their cell sources (kept here so diffs stay readable).

Usage: python notebooks/make_notebooks.py   (then execute them with jupyter/nbclient)
"""

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent

SED_MODEL = [
    ("md", """# The PROVABGS SED model in JAX

`sedflow_jax.model.ProvabgsModel` evaluates the PROVABGS "NMF + burst" model for one galaxy; `jax.vmap`
batches it and `jax.grad` differentiates it. This notebook shows spectra, photometry, gradients, and what each
of the 12 parameters does. It runs in CI (small and fast)."""),
    ("code", """import os
import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sedflow_jax.model import ProvabgsModel
from sedflow_jax.params import THETA_NAMES, DERIVED_NAMES
from sedflow_jax.priors import sedflow_prior

model = ProvabgsModel.build()                          # default BC03 table, package basis, SDSS ugriz
full = ProvabgsModel.build(crop_to_filters=False)      # same model, whole wavelength range (for spectra)
print(model.filters.names, model.dtype, model.wave_aa.shape, full.wave_aa.shape)"""),
    ("md", "## One galaxy: photometry, derived properties, spectrum"),
    ("code", """theta = jnp.array([10.8, 0.30, 0.35, 0.20, 0.15, 0.05, 1.5, 6e-3, 4e-3, 0.5, 0.4, -0.3])
z = 0.1
flux = eqx.filter_jit(model)(theta, z)
mags = 22.5 - 2.5 * np.log10(np.asarray(flux))
print(dict(zip(model.filters.names, np.round(mags, 3))))
print(dict(zip(DERIVED_NAMES, np.asarray(model.properties(theta, z)))))
wave, flam = eqx.filter_jit(full.observed_spectrum)(theta, z)
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.loglog(wave, flam, lw=0.6)
ax.set(xlim=(2000, 20000), xlabel="observed wavelength [Å]", ylabel=r"$f_\\lambda$ [1e-17 cgs]")
assert np.all(np.isfinite(mags))"""),
    ("md", "## What each parameter does\nVary one parameter at a time around the galaxy above and watch the spectrum."),
    ("code", """variations = {
    "log10_mstar_formed": [10.3, 10.8, 11.3],
    "f_burst": [0.0, 0.3, 0.8],
    "t_burst_gyr": [0.05, 1.0, 8.0],
    "gamma1_zh": [5e-4, 6e-3, 1.4e-2],
    "tau_bc": [0.0, 1.5, 3.0],
    "tau_ism": [0.0, 1.0, 2.5],
    "dust_index": [-1.5, -0.3, 0.8],
}
spectrum = eqx.filter_jit(full.observed_spectrum)
fig, axes = plt.subplots(2, 4, figsize=(14, 6), sharex=True)
for ax, (name, values) in zip(axes.flat, variations.items()):
    i = THETA_NAMES.index(name)
    for v in values:
        w, f = spectrum(theta.at[i].set(v), z)
        ax.loglog(w, f, lw=0.6, label=f"{v:g}")
    ax.set_title(name); ax.legend(fontsize=7); ax.set_xlim(2000, 20000)
# SFH shape: put all weight on one NMF component
ax = axes.flat[-1]
for k in range(4):
    beta = np.zeros(4); beta[k] = 1.0
    w, f = spectrum(theta.at[1:5].set(beta), z)
    ax.loglog(w, f, lw=0.6, label=f"beta{k + 1} = 1")
ax.set_title("SFH component"); ax.legend(fontsize=7)
fig.tight_layout()"""),
    ("md", "## Batches and gradients\n`vmap` over prior draws; `grad` of log-fluxes with respect to all 12 parameters."),
    ("code", """prior = sedflow_prior()
k1, k2 = jax.random.split(jax.random.key(0))
thetas = prior.sample(k1, 512)
zs = prior.sample_redshift(k2, 512)
fluxes = eqx.filter_jit(jax.vmap(model))(thetas, zs)
print(fluxes.shape, bool(jnp.all(jnp.isfinite(fluxes))))

def log_r_flux(th, zz):
    return jnp.log(model(th, zz)[2])

grads = eqx.filter_jit(jax.vmap(jax.grad(log_r_flux)))(thetas, zs)
print("d log f_r / d theta, median |.| per parameter:")
for name, g in zip(THETA_NAMES, np.median(np.abs(np.asarray(grads)), axis=0)):
    print(f"  {name:20s} {g:.3g}")
assert np.all(np.isfinite(np.asarray(grads)))
assert np.allclose(np.asarray(grads)[:, 0], np.log(10), rtol=1e-4)  # flux is proportional to 10^logM"""),
    ("md", "## Colours of the prior\nThe SEDflow prior at z ~ U(0, 0.2): g−r against r−i."),
    ("code", """m = 22.5 - 2.5 * np.log10(np.asarray(fluxes))
fig, ax = plt.subplots(figsize=(4.5, 4))
ax.scatter(m[:, 2] - m[:, 3], m[:, 1] - m[:, 2], s=3, c=np.asarray(thetas[:, 10]), cmap="viridis")
ax.set(xlabel="r - i", ylabel="g - r", title="prior draws (colour: tau_ISM)")"""),
]


def _notebook(cells):
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src) for kind, src in cells]
    return nb


def main():
    nbf.write(_notebook(SED_MODEL), HERE / "01_sed_model.ipynb")
    print("wrote", HERE / "01_sed_model.ipynb")


if __name__ == "__main__":
    main()
