"""The incident picker: which open incident a mention reports (or a new one), as a typed dialog.

The caller ranks the incidents (the engine's likeness ranking) and builds the labels; the picker shows
them best first, the best highlighted, and "New incident from this mention" always last. Every label
is untrusted text (a title drafted from a citizen's post): it goes in as `Text`, never as markup.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, widgets
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from monitor.core.incidents import TITLE_MAX
from monitor.ui.screens.dialogs import Dialog, NoteDialog

NEW = "new"  # the option id of "New incident from this mention"
LABEL_WIDTH = 72  # an option's label fits the dialog at 80 columns (border and padding take the rest)


@dataclass(frozen=True)
class LinkChoice:
    """The operator's pick: an open incident, or None for a new incident from this mention."""

    incident_id: int | None


@dataclass(frozen=True)
class PickerEntry:
    """One open incident as the picker lists it (the caller's ranking order is kept)."""

    incident_id: int
    title: str
    reports: int
    current: bool = False  # the incident the mention belongs to now
    reasons: tuple[str, ...] = ()  # why it ranks there: shared terms, words, places, time apart


def entry_label(entry: PickerEntry, width: int = LABEL_WIDTH) -> Text:
    """'#12 arbre tombé bd Carnot · 4 reports', cut to `width` cells with an ellipsis."""
    label = Text(f"#{entry.incident_id} ", style="bold")
    tail = Text(f" · {entry.reports} report{'s' if entry.reports != 1 else ''}", style="dim")
    if entry.current:
        tail.append(" (linked now)", style="yellow")
    title = Text(entry.title)  # the title is cut, not the count and the mark
    title.truncate(max(8, width - label.cell_len - tail.cell_len), overflow="ellipsis")
    label.append_text(title)
    label.append_text(tail)
    label.truncate(width, overflow="ellipsis")
    return label


class IncidentPicker(Dialog[LinkChoice]):
    """Enter links to the highlighted incident; j/k move; Esc cancels with nothing linked."""

    BINDINGS = [
        Binding("j", "down", show=False, id="picker.down"),
        Binding("k", "up", show=False, id="picker.up"),
    ]
    KEEPS_DRAFTS = False

    def __init__(self, mention_line: str, entries: list[PickerEntry]) -> None:
        super().__init__()
        self.mention_line = mention_line
        self.entries = entries

    def compose(self) -> ComposeResult:
        options = [Option(entry_label(e), id=str(e.incident_id)) for e in self.entries]
        options.append(Option(Text("+ New incident from this mention", style="bold"), id=NEW))
        with Vertical(id="dialog", classes="choice"):
            yield Label(Text("Link to an incident", style="bold"), id="dialog-title")
            yield Label(Text(self.mention_line, overflow="ellipsis", no_wrap=True))
            if not self.entries:
                yield Label(Text("No open incident looks alike.", style="dim"))
            yield OptionList(*options, id="incidents", compact=True)
            yield Label(Text(""), id="reasons")
            yield Label(Text("Enter link · j/k move · Esc cancel", style="dim"))

    def on_mount(self) -> None:
        choices = self.query_one("#incidents", OptionList)
        # The best suggestion other than the incident it is in now (or "new" when there is none).
        choices.highlighted = next((i for i, e in enumerate(self.entries) if not e.current), len(self.entries))
        choices.focus()

    @on(OptionList.OptionHighlighted, "#incidents")
    def _explain(self, event: OptionList.OptionHighlighted) -> None:
        """Why the highlighted incident ranks there (a citizen's words among them: as text)."""
        entry = next((e for e in self.entries if str(e.incident_id) == event.option.id), None)
        why = Text(" · ".join(entry.reasons) if entry else "", style="dim")
        why.truncate(LABEL_WIDTH, overflow="ellipsis")
        self.query_one("#reasons", Label).update(why)

    def action_down(self) -> None:
        self.query_one("#incidents", OptionList).action_cursor_down()

    def action_up(self) -> None:
        self.query_one("#incidents", OptionList).action_cursor_up()

    @on(OptionList.OptionSelected, "#incidents")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        chosen = event.option.id
        self.dismiss(LinkChoice(None if chosen == NEW else int(str(chosen))))


class TitleDialog(Dialog[str]):
    """An incident's title, offered for editing (drafted from its first report, or the current one):
    Enter accepts it, Esc cancels. The draft is a citizen's words: set as the input's value, never markup."""

    KEEPS_DRAFTS = False

    def __init__(self, heading: str, title: str) -> None:
        super().__init__()
        self.heading = heading
        self.title_value = title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="filter"):
            yield Label(Text(self.heading, style="bold"), id="dialog-title")
            yield Input(self.title_value, max_length=TITLE_MAX, id="incident-title", compact=True)
            yield Label(Text("Enter accept · Esc cancel", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#incident-title", Input).focus()

    @on(Input.Submitted, "#incident-title")
    def _accept(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())


class BroadcastDialog(NoteDialog):
    """The one text every reporter of an incident gets, reviewed once: `{author}` is filled for each."""

    def __init__(self, title: str, explain: str, prefill: str) -> None:
        super().__init__(title)
        self.explain = explain
        self.prefill = prefill

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="note"):
            yield Label(Text(self.title_text, style="bold"), id="dialog-title")
            yield Label(Text(self.explain, style="dim"))
            yield widgets.TextArea(self.prefill, id="text", soft_wrap=True, compact=True)
            yield Label(Text("Ctrl+S send to all · Esc cancel", style="dim"))
