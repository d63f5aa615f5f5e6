"""bench.attention_speed runs every implementation it is given and sets each against the first."""

from bench import attention_speed


def test_one_row_per_implementation_against_the_first():
    rows = attention_speed.measure("tiny", ["xla", "einsum"], rounds=1, steps=1, decode_batch=2)
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert [c[:3] for c in cells] == [["tiny", "xla", "8"], ["tiny", "einsum", "8"]]
    assert cells[0][4] == cells[0][7] == "1.00x"  # the first is the baseline
    for c in cells:
        assert float(c[3].replace(",", "")) > 0 and c[5] == "2" and float(c[6]) > 0
