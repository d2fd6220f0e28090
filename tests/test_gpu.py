"""`make gpu-check`: the tiny chain in bf16 and fp16 on CUDA (marker `gpu`), and what happens
without a device (a message, nothing run)."""

import math

import pytest


def test_gpu_check_without_cuda_says_it_was_skipped(monkeypatch, capsys):
    import torch

    from xitt.bench import gpu

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.main() == {}
    assert "gpu-check skipped: no CUDA device" in capsys.readouterr().out


def test_tiny_chain_runs_and_collects(tmp_path):
    # on the CPU autocast is off, so this checks the chain and the collection, not the precision
    from xitt.bench.fixtures import build_tiny_encoder, setup
    from xitt.bench.gpu import tiny_chain

    setup()
    out = tiny_chain(build_tiny_encoder(tmp_path), tmp_path, "bf16")
    assert out["counts"]["done"] == out["counts"]["runs"] == 4
    assert len(out["scores"]) == 4 and all(
        math.isfinite(v) for r in out["scores"].values() for v in r.values()
    )


@pytest.mark.gpu
def test_tiny_chain_in_bf16_and_fp16_on_cuda():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine: the gpu-check needs one")
    from xitt.bench import gpu

    out = gpu.main()
    expected = {"fp16", "bf16"} if torch.cuda.is_bf16_supported() else {"fp16"}
    assert set(out) == expected
    for result in out.values():
        assert result["finite"] and result["counts"]["done"] == result["counts"]["runs"]
        assert all(result[size]["xitt_ex_per_s"] > 0 for size in ("tiny", "base"))
