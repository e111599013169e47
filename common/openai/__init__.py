"""The OpenAI layer: files and vector stores (:mod:`.files`), chat turns (:mod:`.responses`),
error translation (:mod:`.errors`). Imported only by functions that talk to OpenAI."""

from __future__ import annotations

from dataclasses import dataclass

import openai

from common.openai.client import build_client
from common.openai.files import DocumentFiles
from common.openai.responses import ChatModel
from common.settings import OpenAISettings


@dataclass(frozen=True)
class OpenAIGateway:
    """Everything the functions use at OpenAI, sharing one client."""

    client: openai.OpenAI
    files: DocumentFiles
    chat: ChatModel


def build_gateway(settings: OpenAISettings, client: openai.OpenAI | None = None) -> OpenAIGateway:
    client = client or build_client(settings)
    return OpenAIGateway(client=client, files=DocumentFiles(client), chat=ChatModel(client, settings))
