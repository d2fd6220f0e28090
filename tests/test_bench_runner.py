"""xitt.bench (runner part): the xitt/Trainer pairing and evaluation throughput run and report
what they say; timings are printed by `xitt bench`, never asserted."""

import statistics
from pathlib import Path


def test_pairing_and_evaluation_throughput_report_every_repeat(tiny_encoder, tmp_path):
    from xitt.bench.fixtures import TINY, setup, tiny_data
    from xitt.bench.loop import eval_throughput, throughput

    setup()
    before = sorted(p.relative_to(TINY) for p in TINY.rglob("*"))
    data = tiny_data(tmp_path)
    out = throughput(Path(tiny_encoder), data, repeat=1, epochs=1, repeats=2)
    assert out["examples"] == 160 and len(out["xitt_s"]) == len(out["trainer_s"]) == 2
    assert out["xitt_ex_per_s"] == 160 / statistics.median(out["xitt_s"])
    assert out["ratio_best"] == min(out["trainer_s"]) / min(out["xitt_s"])
    ev = eval_throughput(Path(tiny_encoder), data, repeat=1)
    assert set(ev) == {"tiny_ner", "tiny_qa"}
    assert all(
        e["languages"] == ["en", "de"] and e["examples"] > 0 and e["ex_per_s"] > 0 for e in ev.values()
    )
    # the benchmark's data is a copy: loading splits never writes into the source fixtures
    assert sorted(p.relative_to(TINY) for p in TINY.rglob("*")) == before
