"""Neural audio codec: EnCodec-compatible SEANet + residual VQ, trainable and importable."""

from audiogen.codecs.config import CodecConfig, build_codec
from audiogen.codecs.model import Codec, CodecError, CodecOutput, EncodedAudio
from audiogen.codecs.rvq import QuantizedResult, ResidualVectorQuantizer

__all__ = [
    "Codec",
    "CodecConfig",
    "CodecError",
    "CodecOutput",
    "EncodedAudio",
    "QuantizedResult",
    "ResidualVectorQuantizer",
    "build_codec",
]
