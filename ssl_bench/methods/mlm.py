"""RoBERTa-style masked language model (Liu et al. 2019) on the shared run machinery.

Not an image ``SSLMethod`` (no backbone, augmentation or probe), but the same interface:
``from_config`` / ``evaluate`` / ``final_status`` / ``throughput_unit``, the optimizer and
schedule from ``ssl_bench.optim``. The network is ``transformers``' ``RobertaForMaskedLM`` built
from a ``RobertaConfig`` (tied input / output embeddings); the output layer runs only at masked
positions (as fairseq's RoBERTa does), the rest of the sequence costs no vocabulary projection.

Metric names (stable; docs/guides/methods.md, "Masked-LM baseline"):
  train/loss, train/masked_acc, train/tokens_per_s (+ train/seq_per_s, train/lr)
  val/loss, val/ppl, val/masked_acc                (held-out split, fixed mask)
  init/* and final/*: loss, ppl, masked_acc, unigram_ppl, masked_tokens (+ tokens_per_s, final)
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from ssl_bench.methods.base import DivergedError
from ssl_bench.optim import lightning_optimization, split_decay
from ssl_bench.text.masking import IGNORE, MaskSpec
from ssl_bench.text.tokenizer import BOS, EOS, PAD


def build_roberta(mcfg: Any, vocab_size: int, max_length: int) -> Any:
    """A randomly initialised ``RobertaForMaskedLM`` from the method config (no download)."""
    from transformers import RobertaConfig, RobertaForMaskedLM

    config = RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=mcfg.hidden_size,
        num_hidden_layers=mcfg.num_layers,
        num_attention_heads=mcfg.num_heads,
        intermediate_size=mcfg.intermediate_size,
        hidden_dropout_prob=mcfg.hidden_dropout,
        attention_probs_dropout_prob=mcfg.attention_dropout,
        max_position_embeddings=max_length + PAD + 1,  # RoBERTa positions start after the padding id
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        initializer_range=mcfg.initializer_range,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        tie_word_embeddings=True,
    )
    return RobertaForMaskedLM(config)


def masked_nll(
    model: Any, ids: torch.Tensor, attn: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(summed NLL, number of correct predictions, targets) over the masked positions only."""
    hidden = model.roberta(input_ids=ids, attention_mask=attn).last_hidden_state
    sel = labels != IGNORE
    target = labels[sel]
    logits = model.lm_head(hidden[sel]).float()
    nll = F.cross_entropy(logits, target, reduction="sum")
    correct = (logits.argmax(-1) == target).sum()
    return nll, correct, target


class MLM(pl.LightningModule):
    throughput_unit = "seq"  # one batch element = one packed sequence; tokens/s is logged too

    def __init__(self, cfg: DictConfig, tokenizer: Any, unigram_logp: torch.Tensor):
        super().__init__()
        self.save_hyperparameters({"cfg": OmegaConf.to_container(cfg, resolve=True)}, logger=False)
        self.cfg, self.mcfg = cfg, cfg.method
        self.tokenizer = tokenizer
        self.model = build_roberta(cfg.method, len(tokenizer), cfg.data.max_length)
        self.register_buffer("unigram_logp", unigram_logp.float(), persistent=False)
        self.exported: str | None = None  # what on_fit_end wrote (the run record's ``export``)
        self._val = torch.zeros(3, dtype=torch.float64)
        self._tokens = 0
        self._tokens_total, self._seconds_total = 0, 0.0
        self._t0 = self._t1 = 0.0

    @classmethod
    def from_config(cls, cfg: DictConfig, datamodule: Any) -> MLM:
        m = cfg.method
        spec = MaskSpec(datamodule.vocab_size, m.mask_prob, m.mask_token_prob, m.random_token_prob)
        datamodule.configure_masking(spec, m.masking, m.static_copies, int(cfg.seed))
        return cls(cfg, datamodule.tokenizer, datamodule.unigram_logp)

    def final_status(self, final: dict[str, float]) -> str:
        return "finished"  # a masked LM has no collapse mode; divergence raises in training_step

    # --- training ------------------------------------------------------------------------------------
    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        ids, attn, labels = batch
        nll, correct, target = masked_nll(self.model, ids, attn, labels)
        n = max(target.numel(), 1)
        loss = nll / n
        if not torch.isfinite(loss):
            raise DivergedError(
                f"loss is {loss.item()} at step {self.global_step} (epoch {self.current_epoch}); "
                "lower optim.base_lr or add warmup (optim.warmup_epochs)"
            )
        self._tokens = self._tokens + attn.sum()  # stays on the device: no per-step sync
        sync = self.trainer.world_size > 1  # several ranks: values averaged over them
        self.log(
            "train/loss",
            loss.detach(),
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=ids.shape[0],
            sync_dist=sync,
        )
        if batch_idx % self.trainer.log_every_n_steps == 0:  # sampled, as the image methods' monitors
            self.log(
                "train/masked_acc", correct / n, on_step=True, on_epoch=True, batch_size=ids.shape[0], sync_dist=sync
            )
        return loss

    def on_train_epoch_start(self) -> None:
        self._tokens, self._t0 = 0, time.perf_counter()
        self._t1 = self._t0

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._t1 = time.perf_counter()
        if batch_idx == self.trainer.num_training_batches - 1:  # logged before the epoch's record is written
            seconds = max(self._t1 - self._t0, 1e-9)
            tokens = int(self._tokens) * self.trainer.world_size
            self._tokens_total += tokens
            self._seconds_total += seconds
            self.log(
                "train/tokens_per_s",
                tokens / seconds,
                on_step=False,
                on_epoch=True,
                batch_size=1,
                sync_dist=self.trainer.world_size > 1,
            )

    # --- held-out monitor ----------------------------------------------------------------------------
    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        nll, correct, target = masked_nll(self.model, *batch)
        self._val += torch.tensor([nll.item(), correct.item(), target.numel()], dtype=torch.float64)

    def on_validation_epoch_end(self) -> None:
        sums = self.trainer.strategy.reduce(self._val.to(self.device), reduce_op="sum").double().cpu()
        self._val = torch.zeros(3, dtype=torch.float64)
        if self.trainer.sanity_checking or sums[2] == 0:
            return
        loss = (sums[0] / sums[2]).item()
        self.log_dict(
            {"val/loss": loss, "val/ppl": math.exp(min(loss, 700.0)), "val/masked_acc": (sums[1] / sums[2]).item()},
            sync_dist=self.trainer.world_size > 1,
        )  # the same on every rank: the mean is the value

    # --- evaluation (random init and final) --------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, datamodule: Any) -> dict[str, float]:
        """Held-out split under its fixed mask: masked-token loss, perplexity (exp of the mean NLL),
        accuracy, and the unigram baseline's perplexity on the same positions."""
        from ssl_bench.distributed import all_sum
        from ssl_bench.eval.frozen import shard

        was_training = self.training
        self.eval()
        nll_sum, uni_sum, correct_sum, count = 0.0, 0.0, 0, 0
        for batch in shard(datamodule.heldout_loader()):  # this rank's part; the sums are added up
            ids, attn, labels = (t.to(self.device) for t in batch)
            nll, correct, target = masked_nll(self.model, ids, attn, labels)
            nll_sum += nll.item()
            uni_sum += -self.unigram_logp[target].double().sum().item()
            correct_sum += int(correct)
            count += target.numel()
        self.train(was_training)
        sums = all_sum(torch.tensor([nll_sum, uni_sum, correct_sum, count], dtype=torch.float64, device=self.device))
        nll_sum, uni_sum, correct_sum, count = sums[0].item(), sums[1].item(), int(sums[2].item()), int(sums[3].item())
        if count == 0:
            raise ValueError("the held-out split has no masked token: raise data.heldout_fraction")
        loss = nll_sum / count
        out = {
            "loss": loss,
            "ppl": math.exp(min(loss, 700.0)),
            "masked_acc": correct_sum / count,
            "unigram_ppl": math.exp(uni_sum / count),
            "masked_tokens": count,
        }
        if self._seconds_total > 0:
            out["tokens_per_s"] = self._tokens_total / self._seconds_total
        return out

    # --- export ------------------------------------------------------------------------------------------
    def on_fit_end(self) -> None:
        """``<run dir>/hf_export``: model + tokenizer, loadable with ``transformers``' Auto classes."""
        if self.mcfg.export and self.trainer.is_global_zero:
            self.exported = str(self.export(Path(self.trainer.default_root_dir) / "hf_export"))

    def export(self, folder: str | Path) -> Path:
        folder = Path(folder)
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        return folder

    # --- optimisation -------------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        o = self.cfg.optim
        decay, no_decay = split_decay(self.model.named_parameters(), o.exclude_bias_norm)
        groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
        return lightning_optimization(groups, o, self.cfg.data.batch_size, self.trainer)
