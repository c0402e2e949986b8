"""The training run: checks, models, data, LoRA, optimizer, the loop, saves, samples and events.

`train(config, emit)` returns the final LoRA path. It runs as one process or as each process of
`accelerate launch`; only the main process writes files and events. Gradients of the LoRA are
averaged across processes by hand (the LoRA is not called through a DDP wrapper: it is patched
into the frozen model's forward, as kohya's is).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from trainer.caption_augment import CaptionOptions
from trainer.checks import DeviceInfo, check_config, check_dataset, resolve_mixed_precision
from trainer.config import TrainConfig
from trainer.errors import TrainError, TrainingDiverged
from trainer.events import EventSink, make_event
from trainer.run_caches import CachesMixin
from trainer.run_outputs import OutputsMixin
from trainer.run_setup import (
    Interrupt,
    mask_options,
    plan_steps,
    resolve_max_token_length,
)

__all__ = ["plan_steps", "resolve_max_token_length", "train"]

NAN_MESSAGE = ("{what} {value} at step {step}: training diverged. Likely cause: fp16 overflow or a too high "
               "learning rate; try mixed_precision = bf16 or a lower learning_rate/text_encoder_lr. "
               "The last good save is kept{last}.")


def train(config: TrainConfig, emit: EventSink | None = None,
          notice: Callable[[str], None] | None = None) -> Path:
    """Run the training described by config; returns the final LoRA file's path.

    notice(what) hears what is loading before the first step (the CLI prints it; it is no event).
    """
    # The config first, without torch: a mistake is reported in milliseconds, not after 8 s of imports.
    warnings = check_config(config, DeviceInfo.guess())
    import torch
    from accelerate import Accelerator

    device_info = DeviceInfo.detect()
    warnings += [w for w in check_config(config, device_info) if w not in warnings]
    precision = resolve_mixed_precision(config, device_info)
    if config.fp8_base:
        from trainer.fp8 import check_fp8_supported

        check_fp8_supported()
    from trainer.trackers import logging_dir

    accelerator = Accelerator(mixed_precision=precision, cpu=not device_info.cuda, log_with=config.log_with,
                              project_dir=str(logging_dir(config)) if config.log_with else None)
    main = accelerator.is_main_process
    rank, world = accelerator.process_index, accelerator.num_processes

    def send(name: str, **fields: Any) -> None:
        if main and emit is not None:
            emit(make_event(name, **fields))

    def loading(what: str) -> None:
        if main and notice is not None:
            notice(what)

    for message in warnings:
        send("warning", message=message)
    loading("checking the dataset")
    check_dataset(config, lambda message: send("warning", message=message))

    from trainer.data import build_training_set

    loading("reading the images and captions")
    training = build_training_set(config)
    max_token_length = resolve_max_token_length(config, [img.caption for img in training.images])

    from trainer.models import base_model_version, load_models

    loading(f"the base model {config.pretrained_model}")
    models = load_models(config, lambda message: send("warning", message=message))
    if models.is_sdxl and config.bucket_reso_steps % 32:
        raise TrainError(f"bucket_reso_steps must be a multiple of 32 for SDXL, not {config.bucket_reso_steps}")
    device = accelerator.device
    weight_dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    trainer = _Trainer(config, accelerator, models, training, max_token_length, weight_dtype, precision, send,
                       base_model_version(models.model_type), device, rank, world)
    trainer.loading = loading
    return trainer.run()


class _Trainer(CachesMixin, OutputsMixin):
    def __init__(self, config, accelerator, models, training, max_token_length, weight_dtype, precision, send,
                 base_version, device, rank, world) -> None:
        self.config, self.accelerator, self.models, self.training = config, accelerator, models, training
        self.max_token_length, self.weight_dtype, self.precision = max_token_length, weight_dtype, precision
        self.send, self.base_version, self.device, self.rank, self.world = send, base_version, device, rank, world
        self.main = accelerator.is_main_process
        self.loading: Callable[[str], None] = lambda what: None
        self.output_dir = Path(config.output_dir)
        self.last_save: Path | None = None
        self.mask_options = mask_options(config, training, send)
        self.last_sample_step: int | None = None
        self.text_cache = None

    # -- setup -------------------------------------------------------------------------------
    def _prepare_models(self) -> None:
        import torch

        config, models = self.config, self.models
        for module in [models.unet, models.vae, *models.text_encoders]:
            module.requires_grad_(False)
            module.eval()
        self.train_text_encoder = not config.train_unet_only
        self.train_unet = not config.train_text_encoder_only
        half = self.weight_dtype != torch.float32
        # Frozen weights in the training dtype (fp16 checkpoints are cast up when training in fp32).
        for module in [models.unet, *models.text_encoders]:
            module.to(self.device, **({"dtype": self.weight_dtype} if module.dtype != self.weight_dtype else {}))
        # SDXL's VAE overflows in fp16 (NaN latents): keep it in fp32 there.
        vae_dtype = self.weight_dtype if half and not models.is_sdxl else torch.float32
        models.vae.to(self.device, **({"dtype": vae_dtype} if vae_dtype != models.vae.dtype else {}))
        if config.fp8_base:
            from trainer.fp8 import store_fp8

            for module in [models.unet, *models.text_encoders]:
                store_fp8(module)
        if config.xformers:
            models.unet.enable_xformers_memory_efficient_attention()
        if config.gradient_checkpointing:
            models.unet.enable_gradient_checkpointing()
            models.unet.train()
            if self.train_text_encoder:
                for encoder in models.text_encoders:
                    encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
                    encoder.train()

    def _build_network(self) -> None:
        import torch

        from trainer.block_lr import block_lr_weights
        from trainer.lora_modules import read_network_weights
        from trainer.network import LoRANetwork, NetworkOptions
        from trainer.network_kinds import network_spec

        config = self.config
        torch.manual_seed(config.seed)
        spec = network_spec(config)
        weights = block_lr_weights(config, self.models.is_sdxl)
        options = NetworkOptions(spec.dim, spec.alpha, spec.dropout, spec.conv_dim, spec.conv_alpha, self.train_unet,
                                 self.train_text_encoder, spec.network_type, spec.dora, spec.lokr_factor,
                                 tuple(weights) if weights else None)
        self.network = LoRANetwork(self.models.unet, self.models.text_encoders, self.models.model_type, options)
        if config.network_weights is not None:
            tensors = read_network_weights(config.network_weights)
            self.network.load_weights(tensors, str(config.network_weights))
        self.network.to(self.device, dtype=torch.float32)
        self.network.apply_to()
        self.network.train()
        self.unet_lr = config.unet_lr if config.unet_lr is not None else config.learning_rate
        self.te_lr = config.text_encoder_lr if config.text_encoder_lr is not None else config.learning_rate
        groups = self.network.parameter_groups(self.unet_lr, self.te_lr)
        if not groups:
            raise TrainError("nothing to train: every learning rate of the trained parts is 0")
        self.params = [p for g in groups for p in g["params"]]

    # -- helpers -----------------------------------------------------------------------------
    def _local_batches(self, epoch: int) -> list[list[int]]:
        batches = self.training.epoch_batches(epoch)
        if self.world == 1:
            return batches
        per_process = math.ceil(len(batches) / self.world)
        # Every process runs the same number of steps (a short shard wraps around), else the
        # gradient all-reduce would wait forever.
        return [batches[(self.rank + i * self.world) % len(batches)] for i in range(per_process)]

    def _all_reduce_grads(self) -> None:
        import torch

        if self.world == 1:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        flat = self.accelerator.reduce(flat, reduction="mean")
        offset = 0
        for p, g in zip(self.params, grads, strict=False):
            n = g.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n

    def _diverged(self, what: str, value: object, step: int) -> None:
        last = f" ({self.last_save})" if self.last_save else " (none was written yet)"
        message = NAN_MESSAGE.format(what=what, value=value, step=step, last=last)
        self.send("error", message=message)
        raise TrainingDiverged(message)

    def _mean(self, value) -> float:
        """The value averaged over processes (NaN anywhere makes it NaN everywhere)."""
        if self.world == 1:
            return float(value.item())
        return float(self.accelerator.reduce(value.reshape(1).float(), reduction="mean").item())

    def _any(self, flag: bool) -> bool:
        import torch

        if self.world == 1:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        return bool(self.accelerator.reduce(value, reduction="sum").item() > 0)

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> Path:
        import torch

        from trainer.metadata import build_metadata
        from trainer.optim import build_optimizer, build_scheduler
        from trainer.saving import Rotation, epoch_name, final_name, restore_state, state_dir_for, step_name
        from trainer.step import EpochBatches, LossOptions, batch_loader, compute_loss
        from trainer.watch import RunWatch

        config, accelerator = self.config, self.accelerator
        started = time.time()
        self._prepare_models()
        self._build_network()
        local_count = len(self._local_batches(0))
        steps_per_epoch, epochs, total_steps = plan_steps(config, local_count)
        groups = self.network.parameter_groups(self.unet_lr, self.te_lr)
        optimizer = build_optimizer(config, groups, self.unet_lr if self.train_unet else self.te_lr)
        self.optimizer = accelerator.prepare(optimizer)
        self.scheduler = build_scheduler(config, self.optimizer.optimizer, total_steps)
        self.base_metadata = build_metadata(
            config, self.training, model_type=self.models.model_type,
            v_parameterization=self.models.v_parameterization, base_model_version=self.base_version,
            model_name=self.models.name, mixed_precision=self.precision, max_token_length=self.max_token_length,
            total_steps=total_steps, epochs=epochs, batches_per_epoch=local_count, unet_lr=self.unet_lr,
            text_encoder_lr=self.te_lr, started_at=started, zero_terminal_snr=self.models.zero_terminal_snr)
        global_step, start_epoch, start_batch = 0, 0, 0
        self.watch = RunWatch(config, network=self.network, accelerator=accelerator, training=self.training,
                              main=self.main, send=self.send)
        if config.resume is not None:
            position = restore_state(Path(config.resume), network=self.network, optimizer=self.optimizer.optimizer,
                                     scheduler=self.scheduler, scaler=accelerator.scaler, ema=self.watch.ema)
            global_step, start_epoch, start_batch = position["step"], position["epoch"], position["batch"]
        self.watch.prepare(self.models, self.device, self.mask_options)
        caption_options = CaptionOptions(config.shuffle_caption, config.keep_tokens, config.keep_tokens_separator,
                                         config.caption_dropout_rate, config.caption_tag_dropout_rate)
        loss_options = LossOptions.from_config(config, train_text_encoder=self.train_text_encoder and self.te_lr > 0,
                                               max_token_length=self.max_token_length)
        if config.cache_text_encoder_outputs or config.cache_text_encoder_outputs_to_disk:
            self.loading("caching text encoder outputs")
        self.text_cache = self._build_text_cache(caption_options, loss_options)
        if config.cache_latents:
            self.loading("caching latents")
        cache = self._build_cache()
        if not config.cache_latents:
            self.models.vae.requires_grad_(False)
        self.send("start", total_steps=total_steps, epochs=epochs, images=self.training.num_images,
                  processes=self.world,
                  images_with_repeats=self.training.num_train_images, reg_images=self.training.num_reg_images,
                  steps_per_epoch=steps_per_epoch, max_token_length=self.max_token_length,
                  model_type=self.models.model_type, mixed_precision=self.precision, config=config.to_dict())
        autocast = accelerator.autocast if self.precision != "no" else nullcontext

        def validate(step: int, epoch: int) -> None:
            self.watch.validate(step, models=self.models, network=self.network, options=loss_options,
                                device=self.device, weight_dtype=self.weight_dtype, autocast=autocast,
                                text_cache=self.text_cache,
                                save_best=lambda path: self._save(path, step, epoch, None))
        epoch_rotation, step_rotation = Rotation(config.save_last_n), Rotation(config.save_last_n)
        accum = config.gradient_accumulation_steps
        loop_started, loop_start_step = time.time(), global_step
        stopped_by_user = False
        last_position = {"step": global_step, "epoch": start_epoch, "batch": start_batch}
        with Interrupt() as interrupt:
            for epoch in range(start_epoch, epochs):
                if global_step >= total_steps:
                    break
                batches = self._local_batches(epoch)
                first = start_batch if epoch == start_epoch else 0
                micro = 0
                data = EpochBatches(self.training, batches, first, epoch=epoch, rank=self.rank, seed=config.seed,
                                    caption_options=caption_options, flip_aug=config.flip_aug,
                                    random_crop=config.random_crop, prior_loss_weight=config.prior_loss_weight,
                                    cache=cache, masks=self.mask_options)
                for index, seed, batch in batch_loader(data, config.max_data_loader_n_workers):
                    torch.manual_seed(seed)
                    text = self.text_cache.get(batch.captions, self.device) if self.text_cache else None
                    loss = compute_loss(self.models, batch, loss_options, device=self.device,
                                        weight_dtype=self.weight_dtype, autocast=autocast, text=text)
                    loss_value = self._mean(loss.detach())
                    if not math.isfinite(loss_value):
                        self._diverged("loss is", loss_value, global_step + 1)
                    if accelerator.scaler is not None:
                        accelerator.backward(loss / accum)
                    else:  # the plain call: accelerate's wrapper costs ~1 ms a step in checks
                        (loss / accum).backward()
                    micro += 1
                    last_in_epoch = index == len(batches) - 1
                    if micro % accum and not last_in_epoch:
                        continue
                    self._all_reduce_grads()
                    if config.max_grad_norm > 0:
                        if accelerator.scaler is not None:
                            accelerator.unscale_gradients()
                        torch.nn.utils.clip_grad_norm_(self.params, config.max_grad_norm)
                    self.optimizer.step()
                    self.scheduler.step()
                    self.optimizer.zero_grad(set_to_none=True)
                    global_step += 1
                    elapsed = time.time() - loop_started
                    rate = (global_step - loop_start_step) / elapsed if elapsed > 0 else 0.0
                    lrs = self.scheduler.get_last_lr()
                    self.send("step", step=global_step, epoch=epoch + 1, loss=loss_value, lr=lrs[-1],
                              it_per_s=rate, eta_s=(total_steps - global_step) / rate if rate > 0 else None)
                    self.watch.after_step(global_step, loss_value, self.optimizer.optimizer.param_groups,
                                          new_epoch=index == first)
                    position = {"step": global_step, "epoch": epoch + (1 if last_in_epoch else 0),
                                "batch": 0 if last_in_epoch else index + 1}
                    last_position = position
                    done = global_step >= total_steps
                    if config.save_every_n_steps and global_step % config.save_every_n_steps == 0 and not done:
                        path = self.output_dir / step_name(config.output_name, global_step)
                        self._save(path, global_step, epoch + 1, position)
                        if self.main:
                            step_rotation.add(path)
                    if (config.sample_every_n_steps and not config.sample_every_n_epochs
                            and global_step % config.sample_every_n_steps == 0):
                        self._sample(global_step, None)
                    if self.watch.due_after_step(global_step):
                        validate(global_step, epoch + 1)
                    if self._any(interrupt.requested) and not done:
                        path = self.output_dir / step_name(config.output_name, global_step)
                        self._save(path, global_step, epoch + 1, position)
                        state = state_dir_for(path) if config.save_state else None
                        if self.main and not config.save_state:
                            state = self._write_state(state_dir_for(path), position)
                        self.send("warning", message=f"interrupted at step {global_step}; state saved to {state}; "
                                                     f"continue with --resume {state}")
                        stopped_by_user = True
                        break
                    if done:
                        break
                if stopped_by_user:
                    break
                number = epoch + 1
                if self.watch.due_after_epoch(number):
                    validate(global_step, number)
                if number < epochs and global_step < total_steps:
                    position = {"step": global_step, "epoch": number, "batch": 0}
                    if config.save_every_n_epochs and number % config.save_every_n_epochs == 0:
                        path = self.output_dir / epoch_name(config.output_name, number)
                        self._save(path, global_step, number, position)
                        if self.main:
                            epoch_rotation.add(path)
                    if config.sample_every_n_epochs and number % config.sample_every_n_epochs == 0:
                        self._sample(global_step, number)
        accelerator.wait_for_everyone()
        if stopped_by_user:
            raise KeyboardInterrupt
        final_epoch = min(epochs, start_epoch + 1 + (global_step - 1) // max(steps_per_epoch, 1)) if global_step else 0
        if self.watch.validator is not None:
            validate(global_step, final_epoch)  # the final weights are evaluated too (once per step)
        final = self.output_dir / final_name(config.output_name)
        self._save(final, global_step, final_epoch, last_position)
        if (config.sample_every_n_epochs or config.sample_every_n_steps) and self.last_sample_step != global_step:
            self._sample(global_step, final_epoch if config.sample_every_n_epochs else None)
        self.send("done", path=str(final), steps=global_step, seconds=round(time.time() - started, 3))
        self.watch.close()
        self.network.restore()
        return final
