/**
 * An OpenAI-compatible HTTP server on node:http: GET /v1/models, POST /v1/completions and
 * /v1/chat/completions, JSON or server-sent events. One engine, one generation at a time: requests
 * queue in a FIFO lock, and a client that goes away (mid-stream or while queued) aborts its own
 * generation so the next request proceeds. Bad requests get an OpenAI-style JSON error and never
 * take the server down.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Engine } from "./engine.ts";
import { ApiError, errorBody } from "./errors.ts";
import { prepare, run, type Outcome } from "./generation.ts";
import { FifoLock } from "./queue.ts";
import { parseChatRequest, parseCompletionRequest } from "./request.ts";
import { ResponseShapes } from "./responses.ts";

export interface ServerOptions {
  /** Largest request body accepted, in bytes (413 beyond). Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /** One line per finished request (method, path, status, time); the CLI prints these to stderr. */
  readonly log?: (line: string) => void;
}

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly server: http.Server;
  /** Requests waiting for the engine (not counting the one running). */
  readonly queued: () => number;
  /** Aborts running and queued generations and closes every connection. */
  close(): Promise<void>;
}

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" };
// Browsers' fetch to a local model server is a common use; allow it (no credentials involved).
const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers": "authorization, content-type",
  "access-control-allow-methods": "GET, POST, OPTIONS",
};

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, signal: AbortSignal) => Promise<void>;

export function createOpenAIServer(
  engine: Engine,
  opts: ServerOptions = {},
): {
  server: http.Server;
  lock: FifoLock;
  abortAll: () => void;
} {
  const maxBody = opts.maxBodyBytes ?? 1 << 20;
  const lock = new FifoLock();
  const live = new Set<AbortController>();

  const generate =
    (parse: typeof parseCompletionRequest | typeof parseChatRequest): Handler =>
    async (req, res, signal) => {
      const body = parse(await readJson(req, maxBody));
      if (body.model !== undefined && body.model !== engine.modelId)
        throw new ApiError(
          404,
          `The model '${body.model}' does not exist; this server serves '${engine.modelId}'.`,
          "invalid_request_error",
          "model",
          "model_not_found",
        );
      const prep = prepare(engine, body);
      const shapes = new ResponseShapes(body.kind, engine.modelId);
      const release = await lock.acquire(signal);
      try {
        if (!body.stream) {
          const outcome = await run(engine, prep, body, signal, () => {});
          if (!signal.aborted) sendJson(res, 200, shapes.full(outcome));
          return;
        }
        res.writeHead(200, { ...CORS, "content-type": "text/event-stream", "cache-control": "no-cache" });
        const start = shapes.start();
        if (start) await sse(res, start);
        let outcome: Outcome;
        try {
          outcome = await run(engine, prep, body, signal, (t) => sse(res, shapes.delta(t)));
        } catch (e) {
          // Headers are gone: report the failure in-band, as OpenAI does, then end the stream.
          const err = e instanceof ApiError ? e : new ApiError(500, (e as Error).message);
          await sse(res, errorBody(err));
          res.end();
          return;
        }
        if (signal.aborted) return;
        await sse(res, shapes.finish(outcome.finishReason));
        if (body.includeUsage) await sse(res, shapes.usageChunk(outcome));
        res.end("data: [DONE]\n\n");
      } finally {
        release();
      }
    };

  const models: Handler = async (_req, res) =>
    sendJson(res, 200, { object: "list", data: [modelObject(engine.modelId)] });

  const oneModel: Handler = async (req, res) => {
    const raw = pathOf(req).slice("/v1/models/".length);
    let id = raw;
    try {
      id = decodeURIComponent(raw);
    } catch {
      // not valid percent-encoding: compare it as written (it will not match)
    }
    if (id !== engine.modelId)
      throw new ApiError(
        404,
        `The model '${id}' does not exist.`,
        "invalid_request_error",
        "model",
        "model_not_found",
      );
    sendJson(res, 200, modelObject(id));
  };

  const routes: Record<string, Partial<Record<string, Handler>>> = {
    "/v1/models": { GET: models },
    "/v1/models/*": { GET: oneModel },
    "/v1/completions": { POST: generate(parseCompletionRequest) },
    "/v1/chat/completions": { POST: generate(parseChatRequest) },
    "/health": {
      GET: async (_q, res) => sendJson(res, 200, { status: "ok", busy: lock.locked, queued: lock.waiting }),
    },
  };

  const server = http.createServer((req, res) => {
    const t0 = performance.now();
    const path = pathOf(req);
    const ac = new AbortController();
    live.add(ac);
    // 'close' before the response finished means the client went away: abort its generation.
    res.on("close", () => {
      live.delete(ac);
      if (!res.writableFinished) ac.abort(new Error("client disconnected"));
      opts.log?.(`${req.method} ${path} ${res.writableFinished ? res.statusCode : "aborted"} ${ms(t0)}ms`);
    });
    const handle = async () => {
      if (req.method === "OPTIONS") {
        res.writeHead(204, CORS).end();
        return;
      }
      const key = path.startsWith("/v1/models/") ? "/v1/models/*" : path;
      const route = Object.hasOwn(routes, key) ? routes[key] : undefined;
      if (!route)
        throw new ApiError(
          404,
          `Unknown route ${req.method} ${path}.`,
          "invalid_request_error",
          null,
          "not_found",
        );
      const handler = Object.hasOwn(route, req.method ?? "") ? route[req.method!] : undefined;
      if (!handler) {
        res.setHeader("allow", Object.keys(route).join(", "));
        throw new ApiError(
          405,
          `Method ${req.method} is not allowed on ${path}; use ${Object.keys(route).join(" or ")}.`,
        );
      }
      await handler(req, res, ac.signal);
    };
    handle().catch((e: unknown) => {
      if (ac.signal.aborted) return; // the client is gone; nobody to tell
      const err =
        e instanceof ApiError ? e : new ApiError(500, `Internal error: ${(e as Error)?.message ?? e}`);
      if (res.headersSent) {
        res.end();
        return;
      }
      if (err.status === 413) res.setHeader("connection", "close"); // don't read the rest of a huge body
      sendJson(res, err.status, errorBody(err));
    });
  });
  const abortAll = () => {
    for (const ac of live) ac.abort(new Error("server closing"));
  };
  return { server, lock, abortAll };
}

/** Creates the server and listens; port 0 picks a free port (what tests use). */
export async function startServer(
  engine: Engine,
  listen: { host?: string; port?: number } = {},
  opts: ServerOptions = {},
): Promise<RunningServer> {
  const { server, lock, abortAll } = createOpenAIServer(engine, opts);
  const host = listen.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port ?? 8000, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}`,
    port,
    server,
    queued: () => lock.waiting,
    close: () =>
      new Promise<void>((resolve) => {
        abortAll();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The request's path without the query; a request target URL cannot parse is taken as it is. */
function pathOf(req: http.IncomingMessage): string {
  const target = req.url ?? "/";
  try {
    return new URL(target, "http://localhost").pathname;
  } catch {
    return target;
  }
}

function modelObject(id: string) {
  return { id, object: "model", created: 0, owned_by: "tkc" };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { ...CORS, ...JSON_HEADERS, "content-length": Buffer.byteLength(text) }).end(text);
}

/** Writes one server-sent event; waits for 'drain' so a slow reader applies backpressure. */
function sse(res: http.ServerResponse, data: unknown): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  if (res.write(`data: ${JSON.stringify(data)}\n\n`)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

async function readJson(req: http.IncomingMessage, limit: number): Promise<unknown> {
  const tooLarge = () =>
    new ApiError(
      413,
      `The request body is larger than ${limit} bytes.`,
      "invalid_request_error",
      null,
      "body_too_large",
    );
  const declared = Number(req.headers["content-length"]);
  if (declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") throw new ApiError(400, "The request body is empty; send a JSON object.");
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(
      400,
      `The request body is not valid JSON: ${(e as Error).message}`,
      "invalid_request_error",
      null,
      "invalid_json",
    );
  }
}

const ms = (t0: number) => Math.round(performance.now() - t0);
