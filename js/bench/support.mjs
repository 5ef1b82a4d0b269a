// What the browser benchmarks share: the folders, and `--name value` arguments.
import path from "node:path";
import { fileURLToPath } from "node:url";

export const jsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const repo = path.resolve(jsDir, "..");
export const target = process.env.CARGO_TARGET_DIR ? path.resolve(repo, process.env.CARGO_TARGET_DIR)
  : path.join(repo, "target");

/** The value after `--name` on the command line, or `dflt`. */
export function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
}
