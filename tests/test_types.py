"""Builders and request types: the public contract of issue 2."""

from __future__ import annotations

from typing import Any

import pytest

from botticelli import GenerateRequest, Input, Message, Role
from botticelli.types import GenerateResponse, ReasoningOutput, TextOutput


def test_builders_make_the_same_request_as_keywords() -> None:
    message = Message.builder().role(Role.USER).content([Input.text("Hello!")]).build()
    built = GenerateRequest.builder().messages([message]).max_tokens(100).temperature(0.7).build()
    direct = GenerateRequest(messages=[Message.user("Hello!")], max_tokens=100, temperature=0.7)
    assert built == direct
    assert built.messages[0].role is Role.USER
    assert built.messages[0].text == "Hello!"


def test_shorthands() -> None:
    assert Message.system("s").role is Role.SYSTEM
    assert Message.assistant("a").role is Role.ASSISTANT
    tool = Message.tool("42", tool_call_id="call_1")
    assert (tool.role, tool.tool_call_id) is not None and tool.role is Role.TOOL
    assert Message.builder().role("user").text("a").text("b").build().text == "ab"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"messages": []}, "messages"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"stop": ["a", ""]}, "stop"),
        ({"seed": "7"}, "seed"),
    ],
)
def test_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    params: dict[str, object] = {"messages": [Message.user("hi")], **kwargs}
    with pytest.raises(ValueError, match=rf"^{field}:"):
        GenerateRequest(**params)  # type: ignore[arg-type]
    builder = GenerateRequest.builder().messages(params.pop("messages"))  # type: ignore[arg-type]
    for key, value in params.items():
        getattr(builder, key)(value)
    with pytest.raises(ValueError, match=rf"^{field}:"):
        builder.build()


def test_message_validation() -> None:
    with pytest.raises(ValueError, match=r"^role:"):
        Message.builder().content([Input.text("x")]).build()
    with pytest.raises(ValueError, match=r"^content:"):
        Message.builder().role(Role.USER).build()
    with pytest.raises(ValueError, match=r"^role:"):
        Message.builder().role("wizard")


def test_inputs_leave_room_for_media() -> None:
    image = Input.image(data=b"\x89PNG", mime_type="image/png")
    assert image.data_url().startswith("data:image/png;base64,")
    assert Input.image("https://x/y.png").data_url() == "https://x/y.png"
    assert Input.audio(b"RIFF").kind == "audio"
    assert Input.document(url="https://x/doc.pdf").kind == "document"
    with pytest.raises(ValueError):
        Input.image()


def test_stop_string_becomes_tuple_and_prompt_shorthand() -> None:
    request = GenerateRequest.prompt("q", system="be brief", stop="\n", seed=3)
    assert request.stop == ("\n",)
    assert [m.role for m in request.messages] == [Role.SYSTEM, Role.USER]


def test_response_text_joins_text_outputs_only() -> None:
    response = GenerateResponse(
        outputs=[ReasoningOutput("thinking"), TextOutput("Hel"), TextOutput("lo")],
        finish_reason="stop",
        model="m",
    )
    assert response.text == "Hello"
    assert response.reasoning == "thinking"
    assert str(response.outputs[1]) == "Hel"


def test_every_public_name_resolves() -> None:
    import botticelli

    for name in botticelli.__all__:
        assert getattr(botticelli, name) is not None, name
    assert sorted(botticelli.__all__) == sorted([*botticelli._EXPORTS, "driver", "__version__"])


# ---- images from a URL, a path or bytes -------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
GIF = b"GIF89a" + b"\x00" * 16
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 8


@pytest.mark.parametrize(
    ("data", "mime"), [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")]
)
def test_image_bytes_and_files_get_their_type(tmp_path: Any, data: bytes, mime: str) -> None:
    import base64

    from_bytes = Input.image(data)
    assert from_bytes.mime_type == mime and from_bytes.data_url() == (
        f"data:{mime};base64,{base64.b64encode(data).decode()}"
    )
    path = tmp_path / "picture.bin"  # the extension says nothing: the bytes decide
    path.write_bytes(data)
    assert Input.image(path).mime_type == mime and Input.image(str(path)).data == data


def test_image_urls_stay_urls_and_unknown_bytes_need_a_type(tmp_path: Any) -> None:
    assert Input.image("https://x/cat.png").url == "https://x/cat.png"
    assert Input.image("data:image/png;base64,AAAA").url == "data:image/png;base64,AAAA"
    with pytest.raises(ValueError, match="mime_type"):
        Input.image(b"not an image")
    assert Input.image(b"raw", mime_type="image/avif").mime_type == "image/avif"
    with pytest.raises(ValueError, match="cannot read"):
        Input.image(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="exactly one"):
        Input.image()
