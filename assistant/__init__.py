"""Policy Lab Assistant: retrieval, grounded answering and the chat app."""
