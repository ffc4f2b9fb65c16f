"""What the command-line apps (``ssl-bench``, ``ssl-bench-eval``) share around Hydra.

- ``guarded`` runs a Hydra app and turns its outcome into an exit code: one line and 2 for bad input
  (``UserError``: config, data, run folder; Hydra's composition errors, with our did-you-mean for an
  unknown key given without ``+``), 128 + N for a run ended by signal N, a traceback and 1 for
  anything else. It sets ``HYDRA_FULL_ERROR`` so that Hydra hands the errors over instead of
  printing them itself.
- ``quote_paths`` quotes the values of path-valued overrides that hold ``=`` or ``,`` (sweep job
  folders are named ``method=byol,seed=1``), which Hydra's override grammar would otherwise parse.
- ``swept_keys`` lists the keys a multirun command line sweeps.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

PATH_KEYS = (
    "resume",
    "source",
    "hydra.run.dir",
    "hydra.sweep.dir",
    "data.root",
    "data.cache_dir",
    "data.tokenizer_cache",
)
_SWEEP_FUNCS = ("range(", "choice(", "glob(", "interval(", "tag(", "shuffle(", "sort(")


def _split(arg: str) -> tuple[str, str] | None:
    if arg.startswith("-") or "=" not in arg:
        return None
    key, value = arg.split("=", 1)
    return key, value


def quote_paths(argv: Sequence[str], keys: Sequence[str] = PATH_KEYS) -> list[str]:
    """``source=a/m=1,s=2`` -> ``source='a/m=1,s=2'`` (Hydra's quoted string) for the given keys."""
    out = []
    for arg in argv:
        kv = _split(arg)
        if kv is not None and kv[0].lstrip("+~") in keys:
            key, value = kv
            if value and value[0] not in "'\"[" and any(ch in value for ch in "=,"):
                arg = f"{key}='" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        out.append(arg)
    return out


def swept_keys(argv: Sequence[str]) -> set[str]:
    """Keys whose command-line value is a sweep (``k=a,b``, ``k=range(...)``, ...), quoted values and
    lists left alone."""
    keys = set()
    for arg in argv:
        kv = _split(arg)
        if kv is None:
            continue
        key, value = kv
        key = key.lstrip("+~")
        if key.startswith("hydra.") or not value or value[0] in "'\"[{":
            continue
        if "," in value or value.startswith(_SWEEP_FUNCS):
            keys.add(key)
    return keys


def group_choices(argv: Sequence[str]) -> dict[str, str]:
    """``{"method": "byol", ...}``: the config-group options the command line picks."""
    out = {}
    for arg in argv:
        kv = _split(arg)
        if kv is not None and "." not in kv[0] and "," not in kv[1]:
            out[kv[0].lstrip("+~")] = kv[1]
    return out


def composition_message(err: BaseException, schema: type | None = None, argv: Sequence[str] = ()) -> str:
    """Hydra's composition / override errors as one line; an override of a key the config does not
    have (``trainer.max_epoch=1``) gets the schema's did-you-mean."""
    from ssl_bench.config import unknown_override

    text = str(err).split("Config search path:")[0]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("See https")]
    first = lines[0] if lines else type(err).__name__
    cause = str(err.__cause__ or "")
    if first.startswith("Could not override '") and "not in struct" in text + cause:
        key = first.split("'")[1].lstrip("+~")
        hint = unknown_override(key, schema, group_choices(argv))
        if hint:
            return hint
    if len(lines) > 2 and lines[1].startswith("Available options in"):
        head = lines[0].split(": ", 1)[-1] if lines[0].startswith("In '") else lines[0]
        return f"{head}; {lines[1].rstrip(':')}: {', '.join(lines[2:])}"
    return " ".join(lines)


def guarded(prog: str, app: Callable[[], Any], schema: type | None = None, error_kind: str = "config error") -> int:
    """Run the Hydra app; the exit code (see the module docstring). Messages go to stderr."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from ssl_bench.errors import UserError
    from ssl_bench.tracking.lifecycle import Interrupted, forwarded_signals

    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        with forwarded_signals():
            app()
    except Interrupted as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return err.exit_code
    except UserError as err:
        print(f"{prog}: {err.kind}: {err}", file=sys.stderr)
        return 2
    except (HydraException, OmegaConfBaseException) as err:
        print(f"{prog}: {error_kind}: {composition_message(err, schema, sys.argv[1:])}", file=sys.stderr)
        return 2
    except PermissionError as err:  # Hydra creating the run folder or writing .hydra/
        print(f"{prog}: run folder: cannot write {err.filename}: {err.strerror}", file=sys.stderr)
        return 2
    except SystemExit as err:
        return err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except Exception:
        traceback.print_exc()
        return 1
    return 0


def fail(code: int) -> NoReturn:
    sys.stdout.flush()
    sys.exit(code)
