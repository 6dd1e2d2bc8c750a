//! Document upload with progress: `fetch` cannot report upload progress, XMLHttpRequest can.

import { errorFromBody, type Api } from "../api/http";
import type { KnowledgeDocument } from "../api/types";

/** Uploads `file` as the multipart field `file`; `onProgress` gets 0–1. */
export function uploadDocument(api: Api, query: string, file: File, onProgress: (fraction: number) => void): Promise<KnowledgeDocument> {
  const send = () =>
    new Promise<{ status: number; body: unknown }>((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", api.url(`/v1/documents${query}`));
      for (const [name, value] of Object.entries(api.authHeader())) xhr.setRequestHeader(name, value);
      xhr.responseType = "json";
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      };
      xhr.onload = () => resolve({ status: xhr.status, body: xhr.response });
      xhr.onerror = () => reject(new Error("Adam cannot be reached."));
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });

  return send().then(async (result) => {
    // An expired access token: refresh once, then send the file again.
    if (result.status === 401 && (await api.refresh())) result = await send();
    if (result.status !== 202 && result.status !== 201) throw errorFromBody(result.status, result.body);
    return result.body as KnowledgeDocument;
  });
}
