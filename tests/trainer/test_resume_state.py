"""--resume reads a state folder with weights_only, and every damaged or hostile part is one line naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trainer.errors import TrainError
from trainer.saving import STATE_FILE, load_state, save_state


class Payload:
    """An arbitrary object: a pickle holding it is refused by weights_only."""


def _state(folder: Path) -> Path:
    layer = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(layer.parameters())
    layer(torch.ones(1, 4)).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    network = {"lora_unet_x.lora_down.weight": torch.ones(2, 4), "lora_unet_x.alpha": torch.tensor(2.0)}
    return save_state(folder, network_state=network, optimizer=optimizer, scheduler=scheduler, scaler=None,
                      position={"step": 3, "epoch": 1, "batch": 0})


def _safetensors(path: Path, header: dict, data: bytes = b"\0" * 16) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)


def _damage(folder: Path, case: str) -> Path:
    if case == "pickle":
        torch.save({"state": Payload()}, folder / "optimizer.pt")
        return folder / "optimizer.pt"
    if case == "not-a-dict":
        torch.save([1, 2], folder / "scheduler.pt")
        return folder / "scheduler.pt"
    if case == "string-offsets":
        _safetensors(folder / "network.safetensors", {"a": {"dtype": "F32", "shape": [2], "data_offsets": ["0", "8"]}})
        return folder / "network.safetensors"
    if case == "zero-rank":
        from safetensors.torch import save_file

        save_file({"lora_unet_x.lora_down.weight": torch.ones(0, 4)}, str(folder / "network.safetensors"))
        return folder / "network.safetensors"
    if case == "nested":
        (folder / STATE_FILE).write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
        return folder / STATE_FILE
    if case == "wrong-type":
        (folder / STATE_FILE).write_text(json.dumps({"step": [1], "epoch": 0, "batch": 0}), encoding="utf-8")
        return folder / STATE_FILE
    if case == "truncated":
        data = (folder / "optimizer.pt").read_bytes()
        (folder / "optimizer.pt").write_bytes(data[: len(data) // 2])
        return folder / "optimizer.pt"
    raise AssertionError(case)


def test_a_good_state_loads(tmp_path):
    state = load_state(_state(tmp_path / "s"))
    assert state["position"] == {"step": 3, "epoch": 1, "batch": 0}
    assert torch.equal(state["network"]["lora_unet_x.lora_down.weight"], torch.ones(2, 4))
    assert state["optimizer"]["param_groups"]


@pytest.mark.parametrize("case", ["pickle", "not-a-dict", "string-offsets", "zero-rank", "nested", "wrong-type",
                                  "truncated"])
def test_each_damaged_part_is_one_line_naming_the_file(tmp_path, case):
    folder = _state(tmp_path / "s")
    bad = _damage(folder, case)
    with pytest.raises(TrainError) as info:
        load_state(folder)
    message = str(info.value)
    assert str(bad) in message and "\n" not in message and "save_state" in message


def test_resume_from_a_pickle_via_the_cli(tmp_path, tiny_sd1, capsys):
    from tests.trainer.conftest import make_train_dataset
    from tui.cli import main as lorakit

    folder = _state(tmp_path / "s")
    _damage(folder, "pickle")
    dataset = make_train_dataset(tmp_path / "ds", images=1)
    code = lorakit(["train", "--pretrained-model", str(tiny_sd1), "--dataset", str(dataset), "--output-dir",
                    str(tmp_path / "out"), "--resolution", "64", "--min-bucket-reso", "32", "--max-bucket-reso",
                    "128", "--bucket-reso-steps", "32", "--network-dim", "4", "--resume", str(folder)])
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("loading: ")]
    assert code == 1 and len(err) == 1 and str(folder / "optimizer.pt") in err[0], err
    assert "\x1b" not in err[0]
