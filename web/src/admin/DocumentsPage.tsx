//! The knowledge base: upload (with progress), status of each document while it is ingested,
//! delete and re-index.

import { useState } from "preact/hooks";
import type { DocumentStatus, KnowledgeDocument } from "../api/types";
import { formatBytes, formatDateTime } from "./format";
import { scopeQuery, type PageProps } from "./scope";
import { uploadDocument } from "./upload";
import { describeError, useResource } from "./useResource";

const POLL_MS = 1500;
const FINAL: DocumentStatus[] = ["ready", "failed"];

interface Upload {
  name: string;
  fraction: number;
  error: string | null;
}

export function DocumentsPage({ scope }: PageProps) {
  const { api } = scope;
  const query = scopeQuery(scope);
  const documents = useResource(
    () => api.request<KnowledgeDocument[]>(`/v1/documents${query}`),
    query,
    (list) => (list.some((d) => !FINAL.includes(d.status)) ? POLL_MS : null),
  );
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [actionError, setActionError] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);

  const upload = async (files: FileList | null) => {
    for (const file of Array.from(files ?? [])) {
      const entry: Upload = { name: file.name, fraction: 0, error: null };
      const update = (patch: Partial<Upload>) => setUploads((list) => list.map((u) => (u.name === entry.name ? { ...u, ...patch } : u)));
      setUploads((list) => [...list.filter((u) => u.name !== file.name), entry]);
      try {
        await uploadDocument(api, query, file, (fraction) => update({ fraction }));
        setUploads((list) => list.filter((u) => u.name !== entry.name));
        await documents.reload();
      } catch (err) {
        update({ error: describeError(err) });
      }
    }
  };

  const act = async (what: () => Promise<unknown>) => {
    setActionError(null);
    try {
      await what();
    } catch (err) {
      setActionError(describeError(err));
    }
    await documents.reload();
  };

  return (
    <section class="admin-page">
      <header class="admin-page__head">
        <div>
          <h1>Documents</h1>
          <p class="admin-page__lead">What the assistant knows: PDF, Word (.docx), Markdown, CSV or text files. Answers are grounded in these.</p>
        </div>
      </header>

      <label
        class={`dropzone${dragging ? " dropzone--active" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          void upload(e.dataTransfer?.files ?? null);
        }}
      >
        <input
          type="file"
          multiple
          accept=".pdf,.docx,.md,.markdown,.txt,.csv,application/pdf,text/plain,text/markdown,text/csv"
          onChange={(e) => {
            void upload(e.currentTarget.files);
            e.currentTarget.value = "";
          }}
        />
        <strong>Drop files here or choose files to upload</strong>
        <span>Up to 20 MB each</span>
      </label>

      {uploads.map((u) => (
        <div key={u.name} class="upload" data-upload={u.name}>
          <span class="upload__name">{u.name}</span>
          {u.error ? (
            <span class="adam-notice adam-notice--error">{u.error}</span>
          ) : (
            <progress class="upload__bar" max={1} value={u.fraction} aria-label={`Uploading ${u.name}`} />
          )}
          <span class="upload__pct">{u.error ? "" : `${Math.round(u.fraction * 100)} %`}</span>
        </div>
      ))}

      {(actionError || documents.error) && <p class="adam-notice adam-notice--error">{actionError ?? documents.error}</p>}

      <div class="table-wrap">
        <table class="table">
          <thead>
            <tr>
              <th>Document</th>
              <th>Status</th>
              <th class="num">Chunks</th>
              <th class="num">Size</th>
              <th>Updated</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {documents.data?.length === 0 && (
              <tr>
                <td colSpan={6} class="table__empty">
                  No documents yet: upload the dealership's opening hours, price lists, stock…
                </td>
              </tr>
            )}
            {documents.data?.map((d) => (
              <tr key={d.id} data-document={d.filename} data-status={d.status}>
                <td>
                  <span class="table__primary">{d.filename}</span>
                  <span class="table__secondary">{d.kind}</span>
                </td>
                <td>
                  <StatusBadge status={d.status} />
                  {d.error && <span class="table__reason">{d.error}</span>}
                </td>
                <td class="num">{d.status === "ready" ? d.chunk_count : "—"}</td>
                <td class="num">{formatBytes(d.size_bytes)}</td>
                <td>{formatDateTime(d.updated_at)}</td>
                <td class="table__actions">
                  <button class="adam-button adam-button--small" type="button" onClick={() => void act(() => api.request(`/v1/documents/${d.id}/reindex`, { method: "POST" }))}>
                    Re-index
                  </button>
                  <button
                    class="adam-button adam-button--small adam-button--danger"
                    type="button"
                    onClick={() => {
                      if (window.confirm(`Delete ${d.filename}? The assistant will stop using it.`)) {
                        void act(() => api.request(`/v1/documents/${d.id}`, { method: "DELETE" }));
                      }
                    }}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return (
    <span class={`badge badge--${status}`} data-badge={status}>
      {status}
    </span>
  );
}
