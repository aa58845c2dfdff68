"""Proofs pass for right results and, just as important, fail for wrong ones."""

import pytest
import sympy
from conftest import need

from symprop import Spec, backprop, prove_all
from symprop.proof import _prove_numeric

SPECS = {
    "softmax_ce": Spec(layers=[2, 3, 3], activation=["sigmoid", "softmax"],
                       loss="cross_entropy", bias=True),
    "bce": Spec(layers=[2, 3, 2], activation=["relu", "sigmoid"], loss="binary_cross_entropy",
                bias=True),
    "custom": Spec(layers=[2, 3, 2], activation=["gelu", "leaky_relu(0.2)"], loss="(a-y)**4",
                   bias=[True, False], activations={"gelu": "0.5*x*(1 + tanh(0.79*(x + 0.04*x**3)))"}),
    "generic": Spec(layers=[2, 3, 2, 2], activation="g", loss="half_sse", bias=True),
}


@pytest.mark.parametrize("name", SPECS)
def test_every_parameter_proves_against_the_composed_C0(name):
    report = prove_all(SPECS[name], "numeric")
    assert report.passed, report.summary()
    assert len(report.results) == SPECS[name].n_parameters


@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize("name", SPECS)
def test_every_parameter_agrees_with_autodiff(name, backend):
    need(backend)
    report = prove_all(SPECS[name], backend)
    assert report.passed, report.summary()
    assert max(r.max_rel_error for r in report.results) < 1e-9


class _Tampered:
    """A derivation whose result is off by a chosen change, to show the proof notices."""

    def __init__(self, derivation, change):
        self._d, self.result = derivation, change(derivation.result)

    def expanded(self):
        return self._d.engine.expand_deltas(self.result)

    def __getattr__(self, name):
        return getattr(self._d, name)


@pytest.mark.parametrize("change", [
    lambda e: 2 * e,
    lambda e: -e,
    lambda e: e + sympy.Rational(1, 10**6),
    lambda e: e.xreplace({s: s * 1.0000001 for s in e.free_symbols if str(s).startswith("a_2")}),
])
def test_numeric_proof_rejects_a_wrong_result(change, tutorial):
    d = backprop(tutorial).derive("w_{12}^{(L)}")
    wrong = _Tampered(d, change)
    assert not _prove_numeric(wrong, points=2, seed=0, dps=30).passed
    assert _prove_numeric(d, points=2, seed=0, dps=30).passed


def test_missing_factor_is_caught_symbolically(tutorial):
    from symprop.proof import _prove_symbolic

    d = backprop(tutorial).derive("w_{22}^{(L-1)}")
    f1, _f2, f3 = d.factors
    wrong = _Tampered(d, lambda e: f1.value * f3.value)  # forgot g'
    assert _prove_symbolic(wrong) is None  # not zero: left to the numeric test
    assert not _prove_numeric(wrong, points=1, seed=0, dps=30).passed
