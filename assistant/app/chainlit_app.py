"""Chainlit callbacks: each one hands over to the app's modules (start it with ``policylab serve``)."""

from __future__ import annotations

import chainlit as cl

from assistant.app import flows, reconnect, rooms, runtime, uploads

reconnect.install()  # a chat whose socket is replaced before its first message starts again


@cl.on_app_startup
async def on_app_startup() -> None:
    await runtime.startup()
    await rooms.startup()


@cl.on_app_shutdown
async def on_app_shutdown() -> None:
    await runtime.shutdown()
    await rooms.shutdown()


@cl.data_layer
def data_layer():
    return runtime.data_layer()


@cl.password_auth_callback
async def password_auth(username: str, password: str) -> cl.User | None:
    return await flows.login(username, password)


@cl.set_chat_profiles
async def chat_profiles(current_user: cl.User | None, language: str | None = None) -> list[cl.ChatProfile]:
    return await flows.chat_profiles(current_user)


@cl.on_chat_start
async def on_chat_start() -> None:
    await flows.chat_start()
    await rooms.chat_start()


@cl.on_chat_resume
async def on_chat_resume(thread) -> None:
    await flows.chat_resume(thread)
    await rooms.chat_resume()


@cl.on_settings_update
async def on_settings_update(values: dict) -> None:
    await flows.settings_update(values)


@cl.on_message
async def on_message(message: cl.Message) -> None:
    if not await rooms.handle_message(message):  # room commands and contributions first
        await flows.handle_message(message)


@cl.on_stop
def on_stop() -> None:
    flows.on_stop()


@cl.action_callback("export_docx")
async def export_docx(action: cl.Action) -> None:
    await flows.export(action, "docx")


@cl.action_callback("export_md")
async def export_markdown(action: cl.Action) -> None:
    await flows.export(action, "md")


@cl.action_callback("publish")
async def publish(action: cl.Action) -> None:
    user = cl.user_session.get("user")
    await uploads.publish(action.payload.get("doc_id", ""), user.identifier if user else "")
