"""Dialogs return values: each is a `Dialog[T]` that dismisses with a `T`, or None on Esc (nothing happened)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from rich.text import Text
from textual import events, on, widgets
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList  # TextArea: widgets.TextArea, imported when first used
from textual.widgets.option_list import Option

from monitor.core import templates as tpl
from monitor.core.config import Template
from monitor.core.models import MentionRow

ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class ReplyResult:
    text: str
    template: str | None = None
    elsewhere: str = ""  # feeds: where the answer was given (a URL or a note)
    note: str = ""


@dataclass(frozen=True)
class ChoiceResult:
    choice: str
    note: str = ""


class Dialog(ModalScreen[ResultT | None]):
    """Esc cancels with nothing changed; a changed draft is thrown away only once the operator says so."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]
    KEEPS_DRAFTS = True  # the filter's query is no draft: Esc simply cancels it

    @on(events.Mount)
    def _remember_draft(self) -> None:
        self._pristine = self._draft()

    def _draft(self) -> tuple[str, ...]:
        return tuple(a.text for a in self.query(widgets.TextArea)) + tuple(i.value for i in self.query(Input))

    def action_cancel(self) -> None:
        if self.KEEPS_DRAFTS and self._draft() != getattr(self, "_pristine", self._draft()):

            def answered(discard: bool | None) -> None:
                if discard:
                    self.dismiss(None)

            self.app.push_screen(DiscardDialog(), answered)
            return
        self.dismiss(None)


class ComposeDialog(Dialog[ReplyResult]):
    """Reply (or resolve with a follow-up): templates, a live length count, Ctrl+S to send."""

    BINDINGS = [
        Binding("ctrl+s", "submit", "Send", priority=True, id="dialog.send"),
        Binding("ctrl+t", "focus_templates", "Templates", id="dialog.templates"),
    ]

    def __init__(
        self,
        row: MentionRow,
        city: str,
        templates: list[Template],
        title: str,
        service: str = "",
        with_note: bool = False,
        prefill: str = "",
        cost: Callable[[str], str] | None = None,
    ) -> None:
        super().__init__()
        self.row = row
        self.cost = cost  # a paid network (X): what this reply costs, in words
        self.templates = templates
        self.variables = tpl.variables(row, city, service)
        self.title_text = title
        self.with_note = with_note
        self.limit = tpl.limit(row.network)
        self.elsewhere = self.limit is None  # no reply API: the answer is given elsewhere
        self.prefill = prefill or (self.variables["author"] + " " if row.network == "mastodon" else "")

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="compose"):
            yield Label(Text(self.title_text, style="bold"), id="dialog-title")
            yield Label(Text(f"{self.row.author}: {self.row.first_line}", overflow="ellipsis", no_wrap=True))
            if self.templates:
                yield OptionList(*[Option(Text(f"{t.name}  [{t.lang or '*'}]"), id=t.id) for t in self.templates],
                                 id="templates", compact=True)  # fmt: skip
            if self.elsewhere:
                yield Label(Text("This source has no reply API: answer elsewhere, then record where.", style="yellow"))
                yield Input(placeholder="where it was answered (URL or note)", id="elsewhere", compact=True)
            if self.with_note:
                yield Input(placeholder="note on the fix (internal, optional)", id="note", compact=True)
            yield widgets.TextArea(self.prefill, id="text", soft_wrap=True, show_line_numbers=False, compact=True)
            yield Label("", id="count")
            if self.cost is not None:
                yield Label("", id="cost")

    def on_mount(self) -> None:
        area = self.query_one("#text", widgets.TextArea)
        area.focus()
        area.move_cursor(area.document.end)
        self._count()

    def on_text_area_changed(self) -> None:
        self._count()

    def _count(self) -> None:
        text = self.query_one("#text", widgets.TextArea).text
        n = tpl.length(text, self.row.network)
        count = Text()
        if self.limit is not None:
            # Bluesky counts graphemes: what an operator calls characters (an emoji is one).
            count.append(f"{n}/{self.limit}", style="bold red" if n > self.limit else "")
        else:
            count.append(f"{n} chars")
        count.append(" · Ctrl+S send · Ctrl+T templates · Esc cancel", style="dim")
        self.query_one("#count", Label).update(count)
        if self.cost is not None:
            self.query_one("#cost", Label).update(Text(f"This reply {self.cost(text)}.", style="yellow"))

    @on(OptionList.OptionSelected, "#templates")
    def _use_template(self, event: OptionList.OptionSelected) -> None:
        template = next(t for t in self.templates if t.id == event.option.id)
        area = self.query_one("#text", widgets.TextArea)
        area.text = tpl.render(template.text, self.variables)
        area.focus()
        area.move_cursor(area.document.end)
        self._template = template.id

    def action_focus_templates(self) -> None:
        if self.templates:
            self.query_one("#templates", OptionList).focus()

    def action_submit(self) -> None:
        text = self.query_one("#text", widgets.TextArea).text.strip()
        elsewhere = self.query_one("#elsewhere", Input).value.strip() if self.elsewhere else ""
        note = self.query_one("#note", Input).value.strip() if self.with_note else ""
        if self.limit is not None and tpl.length(text, self.row.network) > self.limit:
            self.notify("Too long for this network: shorten it first.", severity="error", markup=False)
            return
        if not self.with_note and text in ("", self.prefill.strip()):  # only the @handle: nothing to send
            self.notify("Nothing to send: write the reply first.", severity="warning", markup=False)
            return
        if self.elsewhere and not elsewhere and not self.with_note:
            self.notify("Say where it was answered (a URL or a note).", severity="warning", markup=False)
            return
        self.dismiss(ReplyResult(text, getattr(self, "_template", None), elsewhere, note))


class ChoiceDialog(Dialog[ChoiceResult]):
    """Pick one option (Enter takes the highlighted one), optionally followed by a note."""

    BINDINGS = [
        Binding("j", "down", show=False, id="dialog.down"),
        Binding("k", "up", show=False, id="dialog.up"),
        Binding("ctrl+s", "submit", "Confirm", priority=True, id="dialog.confirm"),
    ]

    def __init__(self, title: str, options: list[tuple[str, str]], with_note: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.options = options
        self.with_note = with_note

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="choice"):
            yield Label(Text(self.title_text, style="bold"), id="dialog-title")
            yield OptionList(*[Option(Text(label), id=key) for key, label in self.options], id="choices", compact=True)
            if self.with_note:
                yield Input(placeholder="optional note for the service — Enter to confirm", id="note", compact=True)
            yield Label(Text("Enter choose · Esc cancel", style="dim"))

    def on_mount(self) -> None:
        choices = self.query_one("#choices", OptionList)
        choices.highlighted = 0
        choices.focus()

    def action_down(self) -> None:
        self.query_one("#choices", OptionList).action_cursor_down()

    def action_up(self) -> None:
        self.query_one("#choices", OptionList).action_cursor_up()

    @on(OptionList.OptionSelected, "#choices")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if self.with_note:
            self.query_one("#note", Input).focus()
        else:
            self.action_submit()

    @on(Input.Submitted, "#note")
    def action_submit(self) -> None:
        choices = self.query_one("#choices", OptionList)
        if choices.highlighted is None:
            return
        option = choices.get_option_at_index(choices.highlighted)
        note = self.query_one("#note", Input).value.strip() if self.with_note else ""
        self.dismiss(ChoiceResult(str(option.id), note))


class NoteDialog(Dialog[str]):
    BINDINGS = [Binding("ctrl+s", "submit", "Save", priority=True, id="dialog.save")]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="note"):
            yield Label(Text(self.title_text, style="bold"), id="dialog-title")
            yield widgets.TextArea("", id="text", soft_wrap=True, compact=True)
            yield Label(Text("Ctrl+S save · Esc cancel", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#text", widgets.TextArea).focus()

    def action_submit(self) -> None:
        text = self.query_one("#text", widgets.TextArea).text.strip()
        if text:
            self.dismiss(text)


class FilterDialog(Dialog[str]):
    """A one-line query: words, plus source:, term:, prio: fields. Empty clears."""

    KEEPS_DRAFTS = False

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="filter"):
            yield Label(Text("Filter", style="bold"), id="dialog-title")
            yield Input(
                self.current, placeholder="words  source:demo  term:voirie  prio:urgent", id="query", compact=True
            )
            yield Label(Text("Enter apply (empty clears) · Esc cancel", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#query", Input).focus()

    @on(Input.Submitted, "#query")
    def _apply(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())


class ConfirmDialog(Dialog[bool]):
    """A yes/no question: y or Enter confirms, n or Esc declines (nothing happens)."""

    BINDINGS = [
        Binding("y,enter", "yes", "Yes", id="confirm.yes"),
        Binding("n", "cancel", "No", id="confirm.no"),
    ]

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="confirm"):
            yield Label(Text(self.title_text, style="bold"), id="dialog-title")
            yield Label(Text(self.body))
            yield Label(Text("y / Enter: yes · n / Esc: no", style="dim"))

    def action_yes(self) -> None:
        self.dismiss(True)


class DiscardDialog(ConfirmDialog):
    """Esc on a changed draft: only `y` throws it away; Esc, `n` or Enter go back to editing."""

    BINDINGS = [Binding("enter", "cancel", show=False, id="discard.keep")]

    def __init__(self) -> None:
        super().__init__("Discard this draft?", "What you wrote will be lost.")

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="confirm"):
            yield Label(Text(self.title_text, style="bold"), id="dialog-title")
            yield Label(Text(self.body))
            yield Label(Text("y: discard · n / Esc: keep editing", style="dim"))
