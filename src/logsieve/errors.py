"""User-facing errors: the CLI prints these as one clear line, never as a traceback."""


class LogsieveError(Exception):
    """A problem the user can fix (bad path, malformed input, wrong option)."""


class DataError(LogsieveError):
    """Input data is missing or malformed; the message names the file, row and problem."""

    def __init__(self, path: object, problem: str, row: int | None = None) -> None:
        where = f"{path}" if row is None else f"{path}, line {row}"
        super().__init__(f"{where}: {problem}")
        self.path, self.problem, self.row = path, problem, row
