"""The epoch loop of a prepared run: train, evaluate on schedule, checkpoint, log, plot.

After the last epoch the written checkpoints get their open-set calibration, measured
on the training identities held out for it (``calibration_fraction``).
Only the main rank evaluates and writes; every rank trains its share of each
epoch and meets the others at a barrier, so the files of an epoch are complete
before the next one starts.
"""

from __future__ import annotations

import time
from typing import Any

from model.checkpoint import save_checkpoint
from model.evaluation.attention_maps import mask_statistics
from model.evaluation.calibration import CalibrationError
from training import distributed
from training.calibration_step import calibrate_checkpoint
from training.checkpointing import Progress, save_resume_state
from training.engine import EvaluationResult, evaluate, train_one_epoch
from training.plots import write_run_plots
from training.run_setup import RunState


def training_data_record(state: RunState, epochs_trained: int) -> dict[str, Any]:
    """Provenance recorded in every model card written by this run."""
    config = state.config
    return {
        **state.data.describe(),
        "epochs_trained": epochs_trained,
        "schedule_history": state.progress.schedule_history,
        "preset_recipe": {
            key: config.to_dict()[key]
            for key in (
                "epochs",
                "batch_p",
                "batch_k",
                "optimizer",
                "lr",
                "backbone_lr_factor",
                "weight_decay",
                "warmup_epochs",
                "lr_milestones",
                "lr_gamma",
                "loss_weights",
                "seed",
            )
        },
    }


def fit(state: RunState) -> Progress:
    """The epoch loop: train, evaluate on schedule, checkpoint, log, plot."""
    config, progress, output = state.config, state.progress, state.config.output_dir
    assert output is not None
    main_rank = state.context.is_main
    last_metrics: dict[str, Any] = {}
    if state.data.calibration_note and main_rank:
        print(f"note: {state.data.calibration_note}", flush=True)
    if not state.data.can_evaluate and main_rank:
        print(
            "note: no query/gallery to evaluate on (pass --eval-dir); "
            "best/ and the ranking plots will not be written",
            flush=True,
        )
    if (
        config.eval_before_training
        and state.data.can_evaluate
        and progress.epoch == 0
        and main_rank
    ):
        result = _evaluate(state)
        _announce(0, None, result)
        assert state.log is not None
        state.log.append({"epoch": 0, **_metric_row(result)})
    for epoch in range(progress.epoch + 1, config.epochs + 1):
        state.data.set_epoch(epoch)
        stats = train_one_epoch(
            state.objective,
            state.data.train_loader,
            state.optimizer,
            state.schedule,
            state.compute,
            epoch=epoch,
            description=f"epoch {epoch}/{config.epochs}",
            show_progress=config.progress and main_rank,
        )
        progress.epoch = epoch
        progress.global_step += stats.steps
        images, seconds = stats.images, stats.seconds
        if state.context.enabled:
            images, seconds = distributed.all_reduce_sum(
                [float(images), seconds], state.context, state.compute.device
            )
            images, seconds = int(images), seconds / state.context.world_size
        row: dict[str, Any] = {
            "epoch": epoch,
            "lr": stats.lr,
            "lr_end": stats.lr_end,
            **stats.means(),
            "images": images,
            "images_per_s": images / seconds if seconds > 0 else 0.0,
            "epoch_seconds": seconds,
        }
        due = state.data.can_evaluate and (epoch % config.eval_every == 0 or epoch == config.epochs)
        result = _evaluate(state) if due and main_rank else None
        masks = result.query.spatial_masks if result is not None else None
        attention = mask_statistics(masks) if masks is not None else None
        if main_rank:
            if result is not None:
                row.update(_metric_row(result))
                last_metrics = {**_card_metrics(result), "epoch": epoch}
            if attention is not None:
                row["attention_correlation"] = attention.correlation_with_mean
                last_metrics["spatial_attention"] = attention.to_dict()
                if attention.collapse:
                    print(f"warning: epoch {epoch}: {attention.collapse}", flush=True)
            row["wall_seconds"] = time.perf_counter() - state.started_at
            _announce(epoch, row, result)
            _save(state, result, last_metrics)
            assert state.log is not None
            state.log.append(row)
        distributed.barrier(state.context)
    if main_rank and state.data.calibration_loader is not None:
        _calibrate(state)
    distributed.barrier(state.context)
    return progress


def _calibrate(state: RunState) -> None:
    """Write the open-set calibration into best/ and last/ (each with its own weights)."""
    output = state.config.output_dir
    assert output is not None and state.data.calibration_loader is not None
    for name in ("best", "last"):
        if not (output / name).is_dir():
            continue
        try:
            calibration = calibrate_checkpoint(
                output / name,
                state.data.calibration_loader,
                state.compute,
                seed=state.config.seed,
                flip=state.config.eval_flip,
            )
        except CalibrationError as error:
            print(f"note: {name}/ gets no open-set calibration: {error}", flush=True)
            continue
        thresholds = ", ".join(
            f"FPIR {target}: {value:.3f}" for target, value in calibration.thresholds.items()
        )
        print(
            f"calibrated {name}/ on {calibration.counts['impostor_scores']} impostor scores "
            f"(thresholds at {calibration.gallery_identities} identities: {thresholds})",
            flush=True,
        )


def _evaluate(state: RunState) -> EvaluationResult:
    assert state.data.query_loader is not None and state.data.gallery_loader is not None
    return evaluate(
        state.network,
        state.data.query_loader,
        state.data.gallery_loader,
        state.compute,
        flip=state.config.eval_flip,
    )


def _metric_row(result: EvaluationResult) -> dict[str, Any]:
    m = result.metrics
    return {"mAP": m.mAP, "mINP": m.mINP, "rank1": m.rank1, "rank5": m.rank5, "rank10": m.rank10}


def _card_metrics(result: EvaluationResult) -> dict[str, Any]:
    metrics = result.metrics.to_dict()
    metrics.pop("cmc", None)
    return metrics


def _save(state: RunState, result: EvaluationResult | None, last_metrics: dict[str, Any]) -> None:
    """Write last/ (+ resume state), and best/ and the plots when mAP improved."""
    config, progress = state.config, state.progress
    output = config.output_dir
    assert output is not None
    record = training_data_record(state, progress.epoch)
    if result is not None and result.metrics.mAP > progress.best_map:
        progress.best_map = result.metrics.mAP
        progress.best_epoch = progress.epoch
        save_checkpoint(state.network, output / "best", training_data=record, metrics=last_metrics)
        if config.plots:
            write_run_plots(
                state.network,
                result,
                state.data.query_records,
                state.data.gallery_records,
                output,
                num_queries=config.plot_queries,
            )
    save_checkpoint(state.network, output / "last", training_data=record, metrics=last_metrics)
    save_resume_state(
        output / "resume",
        network=state.network,
        criterion=state.criterion,
        optimizer=state.optimizer,
        progress=progress,
        config=config.to_dict(),
    )


def _announce(epoch: int, row: dict[str, Any] | None, result: EvaluationResult | None) -> None:
    parts = [f"epoch {epoch}"]
    if row is not None:
        parts.append(f"loss {row['loss']:.4f}")
        parts.append(f"lr {row['lr']:.2e}")
        parts.append(f"{row['images_per_s']:.1f} img/s")
    if result is not None:
        parts.append(f"mAP {result.metrics.mAP:.4f}")
        parts.append(f"rank-1 {result.metrics.rank1:.4f}")
    print(" | ".join(parts), flush=True)
