//! Loads data for a page, reloads on demand, and polls while the caller says so.

import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "../api/http";

export interface Resource<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  reload: () => Promise<void>;
}

/** `load` runs when `key` changes and on `reload()`; while `pollMs(data)` is a number, again
 *  after that many milliseconds. */
export function useResource<T>(load: () => Promise<T>, key: string, pollMs?: (data: T) => number | null): Resource<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const loadRef = useRef(load);
  loadRef.current = load;
  const generation = useRef(0);

  const reload = useCallback(async () => {
    const mine = ++generation.current;
    setLoading(true);
    try {
      const value = await loadRef.current();
      if (mine !== generation.current) return;
      setData(value);
      setError(null);
    } catch (err) {
      if (mine === generation.current) setError(describeError(err));
    } finally {
      if (mine === generation.current) setLoading(false);
    }
  }, []);

  useEffect(() => {
    setData(null);
    void reload();
  }, [key, reload]);

  const interval = data !== null && pollMs ? pollMs(data) : null;
  useEffect(() => {
    if (interval === null) return;
    const timer = setTimeout(() => void reload(), interval);
    return () => clearTimeout(timer);
  }, [data, interval, reload]);

  return { data, error, loading, reload };
}

/** A refusal in words for an admin. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.code === "network") return "Adam cannot be reached.";
    if (error.code === "forbidden") return "Your role may not do this.";
    if (error.code === "not_found") return "It no longer exists.";
    return error.field ? `${error.field}: ${error.message}` : error.message;
  }
  return error instanceof Error ? error.message : "Something went wrong.";
}
