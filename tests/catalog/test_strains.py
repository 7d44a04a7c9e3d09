from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import curve_fit

from algaflow.catalog import load_strain, strain_names
from algaflow.catalog.strains import _library

# shared/ lies beside the repository (DESIGN.md); CI clones the repository next to it.
DATA = Path(__file__).resolve().parents[3] / "shared/data/growthTools_ctkremer/user/example_light_data.csv"


def test_library_has_the_four_required_strains():
    assert set(strain_names()) >= {"chlorella_vulgaris", "nannochloropsis_oceanica", "arthrospira_platensis",
                                   "scenedesmus_almeriensis"}  # fmt: skip


@pytest.mark.parametrize("name", strain_names())
def test_every_parameter_has_source_status_and_unit(name):
    row = _library()[name]
    strain = load_strain(name)
    for key, info in strain.sources.items():
        assert info["status"] in {"fitted", "literature", "assumption"}, key
        assert info["unit"], key
        if info["status"] != "assumption":
            assert info["source"], f"{key} claims {info['status']} without a source"
    assert row["light_model"] in {"haldane", "bernard_remond"}
    assert strain.t_min_c < strain.t_opt_c < strain.t_max_c
    assert strain.ph_min < strain.ph_opt < strain.ph_max
    # CO2 fixed per g biomass = carbon fraction × 44.009/12.011 lies in 1.6–1.9 g/g.
    assert 1.6 <= strain.carbon_fraction * 44.009 / 12.011 <= 1.9


def test_bernard_remond_form_peaks_at_i_opt_with_mu_max():
    strain = load_strain("nannochloropsis_oceanica")
    i_opt = _library()["nannochloropsis_oceanica"]["light_i_opt"]["value"]
    light = np.linspace(1, 3000, 300001)
    f = light / (strain.light_a + strain.light_b * light + strain.light_c * light**2)
    assert light[np.argmax(f)] == pytest.approx(i_opt, rel=1e-3)
    assert f.max() == pytest.approx(1.0, rel=1e-9)  # μ(I_opt) = μmax


@pytest.mark.skipif(not DATA.is_file(), reason=f"shared data not found at {DATA} (clone beside ../shared)")
def test_chlorella_light_response_reproduces_the_fit_to_the_shared_data():
    data = pd.read_csv(DATA)
    chlorella = data[data.species == "Chlorella vulgaris"]

    def haldane(light, mu, k_s, k_i):
        return mu * light / (k_s + light + light**2 / k_i)

    (mu, k_s, k_i), _ = curve_fit(haldane, chlorella.light, chlorella.mu, p0=[2, 30, 1000],
                                  bounds=([0, 0, 10], [10, 1000, 1e6]))  # fmt: skip
    strain = load_strain("chlorella_vulgaris")
    assert strain.mu_max_per_h * 24 == pytest.approx(mu, rel=1e-3)
    assert strain.light_a == pytest.approx(k_s, rel=1e-2)
    assert 1 / strain.light_c == pytest.approx(k_i, rel=1e-2)
