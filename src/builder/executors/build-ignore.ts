import { readdir, readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import dockerignoreModule from '@balena/dockerignore';
import { pack } from 'tar-fs';

// The package is CommonJS (`module.exports = factory`), while its types declare an ES default export.
const dockerignore = dockerignoreModule as unknown as typeof dockerignoreModule.default;

/**
 * Where a build's ignore file may be, in the order Podman and current buildah look (BuildKit knows the
 * `.dockerignore` ones): beside the Dockerfile first, then at the context root. Relative to the context.
 */
function ignoreFileCandidates(dockerfile: string): string[] {
  return [`${dockerfile}.dockerignore`, `${dockerfile}.containerignore`, '.containerignore', '.dockerignore'];
}

export interface BuildIgnore {
  /** The ignore file that applies, relative to the context; undefined when the context has none. */
  file: string | undefined;
  /** Whether the file or directory at this context-relative path stays out of the build context. */
  ignores(path: string): boolean;
  /**
   * Whether something under this excluded directory may be brought back by a `!` exception, so that
   * the directory has to be looked into.
   */
  mayKeepUnder(directory: string): boolean;
}

/** The ignore file of a build with the Dockerfile `dockerfile` (relative to the context), parsed. */
export async function readBuildIgnore(contextDir: string, dockerfile: string): Promise<BuildIgnore> {
  for (const file of ignoreFileCandidates(dockerfile)) {
    const content = await readFile(posix.join(contextDir, file), 'utf8').catch(() => undefined);
    if (content !== undefined) return parseBuildIgnore(file, content);
  }
  return { file: undefined, ignores: () => false, mayKeepUnder: () => false };
}

function parseBuildIgnore(file: string, content: string): BuildIgnore {
  const matcher = dockerignore({ ignorecase: false }).add(content);
  // The literal start of each exception (up to its first wildcard): a directory none of them can reach
  // into needs no look inside.
  const exceptionPrefixes = content
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.startsWith('!'))
    .map((line) => posix.normalize(line.slice(1).trim()).replace(/^\/+/, ''))
    .map((pattern) => pattern.slice(0, pattern.search(/[*?[\\]|$/)));
  return {
    file,
    ignores: (path) => matcher.ignores(path),
    mayKeepUnder: (directory) => {
      const inside = `${directory}/`;
      return exceptionPrefixes.some((prefix) => prefix.startsWith(inside) || inside.startsWith(prefix));
    },
  };
}

/**
 * The paths of the build context to send to the engine, as the Docker CLI sends them: without what the
 * ignore file excludes, but always with the Dockerfile and the ignore file (the engine reads both). An
 * excluded directory is left out as an entry, though files under it that an exception keeps are sent.
 */
export async function contextEntries(contextDir: string, dockerfile: string): Promise<string[]> {
  const ignore = await readBuildIgnore(contextDir, dockerfile);
  const alwaysSent = new Set([dockerfile, ...(ignore.file ? [ignore.file] : [])]);
  const entries = ['.'];
  const walk = async (directory: string): Promise<void> => {
    const children = await readdir(posix.join(contextDir, directory), { withFileTypes: true });
    for (const child of children.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = directory === '.' ? child.name : `${directory}/${child.name}`;
      const excluded = ignore.ignores(path) && !alwaysSent.has(path);
      if (!excluded) entries.push(path);
      const holdsSent = [...alwaysSent].some((sent) => sent.startsWith(`${path}/`));
      if (child.isDirectory() && (!excluded || holdsSent || ignore.mayKeepUnder(path))) await walk(path);
    }
  };
  await walk('.');
  return entries;
}

/** The build context as the tar stream the engine takes, without what the build's ignore file excludes. */
export async function packContext(contextDir: string, dockerfile: string): Promise<Readable> {
  const entries = await contextEntries(contextDir, dockerfile);
  // Every path is listed, so tar-fs must not add a directory's children again on its own.
  const packed = pack(contextDir, { entries, ignore: () => true });
  // tar-fs gives a streamx stream; the engine request wants a Node.js one.
  return Readable.from(packed);
}
