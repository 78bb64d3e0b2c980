"""One pull-request comment per plan, found by a hidden marker and edited in place (GitHub's REST API)."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

#: GitHub refuses issue comments longer than this (characters).
COMMENT_LIMIT = 65536
PER_PAGE = 100


def marker(owner: str, key_prefix: str) -> str:
    """The hidden first line that finds this owner's plan comment again (two owners in one PR: two comments)."""
    digest = hashlib.sha256(f"{owner}\0{key_prefix}".encode()).hexdigest()[:16]
    return f"<!-- redbeat-apply-plan {digest} -->"


def fit(body: str, note: str, limit: int = COMMENT_LIMIT) -> str:
    """``body`` cut to ``limit`` characters, ending in ``note`` when cut (the full plan is in the job summary)."""
    if len(body) <= limit:
        return body
    tail = f"\n\n… {note}\n"
    return body[: limit - len(tail)] + tail


class GitHubError(RuntimeError):
    """An API call failed; the message is one line: method, path, status and GitHub's message."""


@dataclass(frozen=True)
class PullRequest:
    api_url: str  # GITHUB_API_URL: https://api.github.com, or a GitHub Enterprise /api/v3
    repository: str  # owner/name
    number: int
    token: str


class CommentClient:
    """The three calls a plan comment needs: list, create, update."""

    def __init__(self, pr: PullRequest, timeout: float = 30.0) -> None:
        self.pr = pr
        self.timeout = timeout

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            self.pr.api_url.rstrip("/") + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self.pr.token}", "Accept": "application/vnd.github+json",
                     "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json",
                     "User-Agent": "redbeat-apply-action"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:200].replace("\n", " ")
            raise GitHubError(f"{method} {path}: HTTP {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise GitHubError(f"{method} {path}: {exc}") from None

    def find(self, mark: str) -> int | None:
        """The id of the first comment that starts with ``mark``, paging through all of them."""
        base = f"/repos/{self.pr.repository}/issues/{self.pr.number}/comments?per_page={PER_PAGE}"
        page = 1
        while True:
            comments = self._call("GET", f"{base}&page={page}")
            if not isinstance(comments, list):
                raise GitHubError(f"GET {base}: expected a list of comments")
            for comment in comments:
                if str(comment.get("body", "")).startswith(mark):
                    return int(comment["id"])
            if len(comments) < PER_PAGE:
                return None
            page += 1

    def upsert(self, mark: str, body: str) -> str:
        """Edit this plan's comment, or create it; returns the comment's html_url."""
        found = self.find(mark)
        if found is None:
            reply = self._call("POST", f"/repos/{self.pr.repository}/issues/{self.pr.number}/comments", {"body": body})
        else:
            reply = self._call("PATCH", f"/repos/{self.pr.repository}/issues/comments/{found}", {"body": body})
        return str(reply.get("html_url", "")) if isinstance(reply, dict) else ""
