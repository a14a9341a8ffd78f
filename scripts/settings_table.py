"""Print the README's settings table from the Settings class (so the docs cannot drift)."""

from assistant.settings import Settings


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "" if default is None else str(default)
        if name == "knowledge_dir":
            shown = "knowledge/ (in the repository)"
        rows.append(f"| `POLICYLAB_{name.upper()}` | `{shown}` | {field.description or ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
