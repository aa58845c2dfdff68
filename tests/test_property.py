"""Random small architectures: every parameter's derived gradient equals diff of composed C_0."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symprop import Spec, prove_all
from symprop.activations import ACTIVATIONS
from symprop.losses import LOSSES

ELEMENTWISE = sorted(n for n, r in ACTIVATIONS.items() if not r.vector)
PROBABILITY_OUTPUTS = ["sigmoid", "softmax", "g"]


@st.composite
def specs(draw):
    n_weight_layers = draw(st.integers(1, 4))
    widths = draw(st.lists(st.integers(1, 5), min_size=n_weight_layers + 1,
                           max_size=n_weight_layers + 1))
    loss = draw(st.sampled_from(sorted(LOSSES) + ["(a - y)**4", "log(1 + (a - y)**2)"]))
    hidden = draw(st.lists(st.sampled_from(ELEMENTWISE), min_size=n_weight_layers - 1,
                           max_size=n_weight_layers - 1))
    if LOSSES.get(loss) and LOSSES[loss].needs_probabilities:
        out = draw(st.sampled_from(PROBABILITY_OUTPUTS))
    else:
        out = draw(st.sampled_from(ELEMENTWISE + ["softmax"]))
    if out == "softmax" and widths[-1] == 1:
        widths[-1] = 2
    bias = draw(st.lists(st.booleans(), min_size=n_weight_layers, max_size=n_weight_layers))
    return Spec(layers=widths, activation=hidden + [out], loss=loss, bias=bias)


# The proof is against SymPy's plain diff of the composed C_0, in 30-digit arithmetic.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(), st.integers(0, 10**6))
def test_every_parameter_matches_diff_of_composed_C0(spec, seed):
    # keep the composed expression small enough for plain diff
    if spec.n_parameters > 40:
        spec = Spec(layers=[spec.layers[0], spec.layers[-1]], activation=[spec.activation[-1]],
                    loss=spec.loss,
                    bias=spec.bias[:1])
    report = prove_all(spec, "numeric", seed=seed)
    assert report.passed, (spec, [r for r in report.failures])


@settings(max_examples=25, deadline=None)
@given(specs())
def test_spec_round_trips_through_its_dict(spec):
    assert Spec.from_dict(spec.to_dict()) == spec


def _concrete(spec: Spec) -> Spec:
    """The same architecture with every generic g replaced (codegen needs numbers)."""
    acts = ["tanh" if a.name == "g" and l < spec.L else "sigmoid" if a.name == "g" else str(a)
            for l, a in enumerate(spec.activation, start=1)]
    return Spec(layers=spec.layers, activation=acts, loss=spec.loss, bias=spec.bias)


# Generated modules, both styles, against PyTorch autograd of an independent forward pass.
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(), st.sampled_from(["vectorized", "scalar"]), st.integers(0, 10**6))
def test_generated_code_matches_torch(spec, style, seed):
    from conftest import need

    from symprop.verify import verify

    need("torch")
    spec = _concrete(spec)
    report = verify(spec, style=style, against=("torch",), seed=seed)
    assert report.passed, str(report)
