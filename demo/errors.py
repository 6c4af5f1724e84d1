"""Error handling of every model request: expected failures become a clear ``gr.Error`` in the user's tab, unexpected
ones are logged and reported without crashing the app."""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import logging

import gradio as gr

from demo.environment import DiskFullError, check_disk, prune_result_cache, result_cache
from models.cache import trim_heap
from models.hub import CheckpointError
from models.image_io import ImageInputError

log = logging.getLogger(__name__)


def user_errors(fn):
    """Turn expected failures into a clear ``gr.Error`` for the user; log unexpected ones, never crash the app.
    A generator (a streaming handler) is guarded over its whole iteration."""

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streaming(*args, **kwargs):
            with _as_user_error():
                prune_result_cache()
                check_disk(result_cache())
                yield from fn(*args, **kwargs)

        return streaming

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _as_user_error():
            prune_result_cache()  # bounded disk: old uploads and results go (throttled, non-blocking)
            check_disk(result_cache())  # Gradio writes every output image there after we return
            return fn(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def _as_user_error():
    try:
        yield
    except gr.Error:
        raise
    except (ImageInputError, CheckpointError, DiskFullError) as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise gr.Error(f"The server's disk is full ({exc.strerror}); results cannot be saved right now. "
                           "The other pages still work.", print_exception=False) from None  # fmt: skip
        log.exception("request failed")
        raise gr.Error(f"The server could not read or write a file ({type(exc).__name__}). The app is still "
                       "running; try again.", print_exception=False) from None  # fmt: skip
    except Exception as exc:
        log.exception("request failed")
        raise gr.Error(
            f"Something went wrong while processing this input ({type(exc).__name__}: {exc}). "
            "The app is still running; try another image.",
            print_exception=False,
        ) from None
    finally:
        trim_heap(every_s=10)  # this request's freed buffers go back to the system (at most every 10 s)
