"""A tiny in-memory Hugging Face Hub for tests: enough of the HTTP API for huggingface_hub's unmodified client.

Started on 127.0.0.1 by the tests and reached through ``HF_ENDPOINT``. Implements:

* ``POST /api/repos/create``                       -> ``{"url"}`` (409 when the repo exists)
* ``POST /api/validate-yaml``                      -> 400 with ``errors`` when the card metadata is malformed
* ``POST /api/models/{repo}/preupload/{rev}``       -> every file ``uploadMode: regular`` (inline base64, no LFS/xet)
* ``POST /api/models/{repo}/commit/{rev}``          -> NDJSON ``header`` / ``file`` / ``deletedFile`` lines
* ``HEAD|GET /{repo}/resolve/{rev}/{path}``         -> bytes with ``X-Repo-Commit`` and ``ETag`` headers
* ``GET /api/models/{repo}[/revision/{rev}]``       -> model info with ``sha`` and ``siblings``
* ``GET /api/models/{repo}/tree/{rev}[/{path}]``    -> file list

Counts every request in ``HubServer.requests`` so tests can prove that an offline load made none.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

import yaml


class Repo:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.commits: list[str] = []

    @property
    def sha(self) -> str:
        return self.commits[-1] if self.commits else "0" * 40


class HubServer:
    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, body: bytes | dict | list = b"", headers: dict | None = None):
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode()
                    headers = {"Content-Type": "application/json", **(headers or {})}
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _repo(self, repo_id: str) -> Repo | None:
                return server.repos.get(repo_id)

            def do_POST(self):
                path = urlparse(self.path).path
                server.requests.append(("POST", path))
                body = self._body()
                if path == "/api/repos/create":
                    data = json.loads(body)
                    repo_id = f"{data['organization']}/{data['name']}" if data.get("organization") else data["name"]
                    with server.lock:
                        if repo_id in server.repos:
                            return self._send(409, {"error": "You already created this model repo"})
                        server.repos[repo_id] = Repo()
                    return self._send(200, {"url": f"{server.url}/{repo_id}", "name": repo_id})
                if path == "/api/validate-yaml":
                    errors = validate_card_yaml(json.loads(body).get("content", ""))
                    return self._send(400 if errors else 200, {"errors": errors, "warnings": []})
                parts = path.split("/")  # ['', 'api', 'models' | 'datasets', ns, name, action, rev]
                if len(parts) >= 7 and parts[1] == "api" and parts[2] in ("models", "datasets"):
                    repo_id, action = f"{parts[3]}/{parts[4]}", parts[5]
                    repo = self._repo(repo_id)
                    if repo is None:
                        return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                    if action == "preupload":
                        files = json.loads(body)["files"]
                        return self._send(
                            200,
                            {
                                "files": [
                                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                                    for f in files
                                ]
                            },
                        )
                    if action == "commit":
                        return self._commit(repo_id, repo, body)
                return self._send(404, {"error": "not found"})

            def _commit(self, repo_id: str, repo: Repo, body: bytes):
                with server.lock:
                    for line in body.decode().splitlines():
                        if not line.strip():
                            continue
                        item = json.loads(line)
                        key, value = item["key"], item["value"]
                        if key == "file":
                            repo.files[value["path"]] = base64.b64decode(value["content"])
                        elif key == "deletedFile":
                            repo.files.pop(value["path"], None)
                        elif key not in ("header",):
                            return self._send(400, {"error": f"unsupported commit entry {key}"})
                    digest = hashlib.sha1(
                        json.dumps(sorted((p, hashlib.sha1(c).hexdigest()) for p, c in repo.files.items())).encode()
                        + str(len(repo.commits)).encode()
                    ).hexdigest()
                    repo.commits.append(digest)
                return self._send(
                    200,
                    {
                        "commitUrl": f"{server.url}/{repo_id}/commit/{digest}",
                        "commitOid": digest,
                        "pullRequestUrl": None,
                    },
                )

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                path = unquote(urlparse(self.path).path)
                server.requests.append((self.command, path))
                parts = path.split("/")
                if len(parts) >= 5 and parts[3] == "resolve":  # /{ns}/{name}/resolve/{rev}/{file}
                    repo = self._repo(f"{parts[1]}/{parts[2]}")
                    file = "/".join(parts[5:])
                    if repo is None:
                        return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                    if file not in repo.files:
                        return self._send(
                            404,
                            {"error": "Entry not found"},
                            {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.sha},
                        )
                    content = repo.files[file]
                    etag = hashlib.sha256(content).hexdigest()
                    return self._send(
                        200,
                        content,
                        {"X-Repo-Commit": repo.sha, "ETag": f'"{etag}"', "Content-Type": "application/octet-stream"},
                    )
                if len(parts) >= 5 and parts[1:3] == ["api", "models"]:
                    repo_id = f"{parts[3]}/{parts[4]}"
                    repo = self._repo(repo_id)
                    if repo is None:
                        return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                    if len(parts) >= 7 and parts[5] == "tree":
                        prefix = "/".join(parts[7:])
                        return self._send(
                            200,
                            [
                                {"type": "file", "path": p, "size": len(c), "oid": hashlib.sha1(c).hexdigest()}
                                for p, c in sorted(repo.files.items())
                                if p.startswith(prefix)
                            ],
                        )
                    return self._send(
                        200,
                        {
                            "id": repo_id,
                            "modelId": repo_id,
                            "sha": repo.sha,
                            "private": False,
                            "siblings": [{"rfilename": p} for p in sorted(repo.files)],
                        },
                    )
                return self._send(404, {"error": "not found"})

        return Handler


def validate_card_yaml(content: str) -> list[dict]:
    """What the Hub checks on push, in small: parseable YAML; model-index entries with name and results.

    ``content`` is the whole README; its metadata is the YAML block between the leading ``---`` lines.
    """
    if content.startswith("---"):
        content = content.split("---", 2)[1]
    try:
        meta = yaml.safe_load(content) or {}
    except yaml.YAMLError as exc:
        return [{"message": f"invalid YAML: {exc}"}]
    errors = []
    for entry in meta.get("model-index", []) or []:
        if "name" not in entry or not isinstance(entry.get("results"), list):
            errors.append({"message": "model-index entries need a name and a results list"})
            continue
        for res in entry["results"]:
            if "task" not in res or "dataset" not in res or not res.get("metrics"):
                errors.append({"message": "each model-index result needs task, dataset and metrics"})
            for metric in res.get("metrics", []):
                if not isinstance(metric.get("value"), (int, float)):
                    errors.append({"message": f"metric value must be a number: {metric}"})
    return errors
