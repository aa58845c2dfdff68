"""Node names with any number of indices (the index engine's first step): how they print,
how --wrt reads them, and that one or two single digits still run together as seed 000
writes them."""

import pickle

import pytest

from symprop.errors import NameLookupError
from symprop.notation import Node, index_label, node_of, parse_node_name


def test_one_or_two_single_digits_run_together_more_indices_take_commas():
    assert Node("w", 2, 1, 0).latex(3) == "w_{10}^{(L-1)}"
    assert Node("w", 2, 10, 3).text() == "w_10,3^(2)"
    assert Node("w", 1, 0, 1, 2, 2).latex() == "w_{0,1,2,2}^{(1)}"
    assert Node("a", 2, 0, 3, 1).text(2) == "a_0,3,1^(L)"
    assert Node("adj", 1, 2, 0, 1).latex() == \
        r"\frac{\partial C_{0}}{\partial a_{2,0,1}^{(1)}}"
    assert index_label(("c", "p", "q")) == "c,p,q"
    assert index_label(("j", "k")) == "jk"


def test_a_node_is_its_kind_layer_and_indices_whatever_the_spelling():
    assert Node("mu", 2) == Node("mu", 2, None) and Node("mu", 2).indices == ()
    assert Node("b", 2, 1, None) == Node("b", 2, 1)
    conv = Node("w", 1, 0, 1, 2, 2)
    assert (conv.j, conv.k, conv.indices) == (0, 1, (0, 1, 2, 2))
    assert pickle.loads(pickle.dumps(conv)) == conv and hash(conv) == hash(Node("w", 1, 0, 1, 2, 2))
    assert node_of(conv.symbol) == conv and conv.symbol.name == "w_0,1,2,2^(1)"
    assert sorted([Node("w", 1, 1, 0), Node("w", 1, 0, 3), Node("w", 1, 0, 2, 9)]) == [
        Node("w", 1, 0, 2, 9), Node("w", 1, 0, 3), Node("w", 1, 1, 0)]
    with pytest.raises(AttributeError):
        conv.layer = 2


def test_wrt_reads_four_indices_where_the_layer_has_them():
    kinds = {"w": (True, 4), "a": (True, 3)}
    assert parse_node_name("w_{0,1,2,2}^{(1)}", (8, 8), kinds) == Node("w", 1, 0, 1, 2, 2)
    assert parse_node_name("w_0,1,2,2^(L)", (8, 8), kinds) == Node("w", 1, 0, 1, 2, 2)
    with pytest.raises(NameLookupError, match=r"needs 4 node index\(es\), e.g. w_\{0,1,2,3\}"):
        parse_node_name("w_{12}^{(1)}", (8, 8), kinds)
