"""Configs: one YAML with a section per concern, a ``model:`` section per kind, command line wins.

Ground floor: imports nothing of models, train, infer, losses or data (a test reads the imports).
"""

from ..errors import ConfigError
from .loader import SECTIONS, Config, dump, load_config, parse_args, read_raw
from .models import (MODEL_SECTIONS, ColBERTModelArgs, EmbeddingModelArgs, LLMRerankerModelArgs, ModelArgs,
                     PERankModelArgs, RerankerModelArgs)
from .sections import DATA_FORMATS, TRAIN_DEFAULTS, DataArgs, EvalArgs, LossArgs, check_choice

__all__ = ["ColBERTModelArgs", "Config", "ConfigError", "DATA_FORMATS", "DataArgs", "EmbeddingModelArgs", "EvalArgs",
           "LLMRerankerModelArgs", "LossArgs", "MODEL_SECTIONS", "ModelArgs", "PERankModelArgs", "RerankerModelArgs",
           "SECTIONS", "TRAIN_DEFAULTS", "check_choice", "dump", "load_config", "parse_args", "read_raw"]
