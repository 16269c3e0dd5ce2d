"""A client for the video service: send video requests over Kafka, follow them, get the videos.

```python
from video_client import VideoClient

async with VideoClient("localhost:9092") as client:
    task = await client.submit("wanx2.1-t2v-turbo", {"prompt": "a kitten on the grass"})
    completed = await task.result(timeout=900)
```

`video_client.schemas` holds the contract's event models; `video_client.MODELS` the models the
service runs, with their parameters and JSON Schemas. `video-service --help` is the CLI.
"""

from video_client.client import DEFAULT_LOOKBACK, TaskHandle, Token, VideoClient
from video_client.config import KafkaConfig, Topics
from video_client.errors import (
    InvalidParameters,
    InvalidRequest,
    RequestRejected,
    TaskCancelled,
    TaskFailed,
    TopicNotFound,
    UnknownModel,
    VideoClientError,
)
from video_client.models import MODELS, ModelInfo, ParameterInfo, get_model, validate_parameters
from video_client.schemas import (
    CompletedEvent,
    DeadLetterEvent,
    ErrorCode,
    ErrorInfo,
    StatusEvent,
    TaskStatus,
    VideoFile,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_LOOKBACK",
    "MODELS",
    "CompletedEvent",
    "DeadLetterEvent",
    "ErrorCode",
    "ErrorInfo",
    "InvalidParameters",
    "InvalidRequest",
    "KafkaConfig",
    "ModelInfo",
    "ParameterInfo",
    "RequestRejected",
    "StatusEvent",
    "TaskCancelled",
    "TaskFailed",
    "TaskHandle",
    "TaskStatus",
    "Token",
    "TopicNotFound",
    "Topics",
    "UnknownModel",
    "VideoClient",
    "VideoClientError",
    "VideoFile",
    "__version__",
    "get_model",
    "validate_parameters",
]
