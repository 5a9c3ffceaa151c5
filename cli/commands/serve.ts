/** `tkc serve`: the OpenAI-compatible HTTP server (llama/serve/) over one loaded model. */
import { ModelEngine } from "../../llama/serve/model-engine.ts";
import { startServer } from "../../llama/serve/server.ts";
import { intFlag, parseFlags, UsageError } from "../args.ts";
import type { Command } from "../command.ts";
import { loadModel, modelFlags, modelFlagsHelp, modelSpec } from "../load-model.ts";

const NAME = "serve";

const flags = {
  host: { type: "string" },
  port: { type: "string" },
  "max-body": { type: "string" },
  quiet: { type: "boolean", short: "q" },
  ...modelFlags,
} as const;

export const serveCommand: Command = {
  name: NAME,
  summary: "serve a model over an OpenAI-compatible HTTP API",
  help: `Usage: tkc serve [--host H] [--port P] [model flags]

Serves one model over OpenAI's HTTP API: GET /v1/models, POST /v1/completions and
POST /v1/chat/completions (streaming with "stream": true). One generation runs at a time; other
requests wait in arrival order. Any OpenAI client works, e.g. with the openai npm package:
  new OpenAI({ baseURL: "http://127.0.0.1:8000/v1", apiKey: "none" })
Requests name the model as GET /v1/models lists it (e.g. "stories15M"), or leave "model" out.
Chat requests to models without a chat template (such as stories15M, a story model) continue the
messages' text as one document; see 'tkc chat --help'.

Flags:
      --host H            address to bind (default 127.0.0.1; 0.0.0.0 exposes it to the network)
      --port P            TCP port (default 8000; 0 picks a free one, printed at start)
      --max-body BYTES    largest request body accepted (default 1048576)
  -q, --quiet             do not log each request to stderr

${modelFlagsHelp}
`,
  async run(argv, io) {
    const { values } = parseFlags(NAME, argv, flags);
    const host = values.host ?? "127.0.0.1";
    if (host.trim() === "") throw new UsageError(`tkc ${NAME}: --host must not be empty`);
    const port = intFlag(NAME, "port", values.port, 0, 65535) ?? 8000;
    const maxBodyBytes = intFlag(NAME, "max-body", values["max-body"], 1024);
    const loaded = await loadModel(modelSpec(NAME, values));
    const engine = new ModelEngine(loaded.id, loaded.model, loaded.tokenizer, loaded.chatFormat);
    const log = values.quiet
      ? undefined
      : (line: string) => io.stderr.write(`${new Date().toISOString()} ${line}\n`);
    const server = await startServer(engine, { host, port }, { maxBodyBytes, log }).catch(
      (e: NodeJS.ErrnoException) => {
        if (e.code === "EADDRINUSE")
          throw new Error(`port ${port} on ${host} is already in use (try --port 0)`);
        throw e;
      },
    );
    io.stderr.write(`tkc serve: ${loaded.description}\n`);
    // Tests and scripts read this line to find the port; keep its shape.
    io.stderr.write(`tkc serve: listening on ${server.url}/v1 (model "${loaded.id}")\n`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        io.stderr.write("tkc serve: shutting down\n");
        void server.close().then(resolve);
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    return 0;
  },
};
