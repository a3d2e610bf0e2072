from aigve.engine.runner import Engine, RunConfig

__all__ = ["Engine", "RunConfig"]
