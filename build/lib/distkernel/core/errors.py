"""The three ways a command fails, each with its exit code.

UserError: bad input; one line naming the file/option and the fix (exit 2).
ToolError: a tool is missing or crashed; names the tool and its log (exit 3).
Failure:   the thing built or tested failed (a compile error, a boot panic) (exit 1).
"""

from __future__ import annotations

from pathlib import Path


class DistkernelError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, details: list[str] | None = None, log: Path | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.log = log

    def lines(self) -> list[str]:
        out = [self.message]
        if self.log is not None:
            out.append(f"log: {self.log}")
        out.extend(self.details)
        return out


class UserError(DistkernelError):
    exit_code = 2


class ToolError(DistkernelError):
    exit_code = 3


class Failure(DistkernelError):
    exit_code = 1
