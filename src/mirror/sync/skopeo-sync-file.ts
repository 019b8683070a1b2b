import { parseDocument, visit } from 'yaml';
import { invalid } from '../../errors.ts';
import { isValidTag, parseRepositoryName } from '../../registry/names.ts';
import type { PlatformSelection } from './platform-selector.ts';
import { exactTagGlob, tagFilterSchema, type TagFilter, type TagFilterInput } from './tag-filter.ts';

/*
 * Turns the YAML file of `skopeo sync --src yaml` into mirror definitions, for `slipway mirror import`.
 *
 *   registry.example.com:              # a registry host, with an optional :port and path prefix
 *     images:
 *       busybox: []                    # every tag
 *       redis: ["1.0", "2.0"]          # these tags
 *     images-by-tag-regex:
 *       nginx: ^1\.13\.[12]-alpine-perl$
 *     images-by-semver:
 *       alpine: ">= 3.12.0"
 *     credentials: { username: john, password: secret }
 *     tls-verify: true
 *     cert-dir: /home/john/certs
 *
 * Each repository becomes the mirror NAMESPACE/<upstream repository>; on Docker Hub a one-component
 * repository is an official image, so `docker.io: nginx` is the mirror NAMESPACE/library/nginx. skopeo
 * copies the union of every section a repository is listed in: a list of tags and a regular expression
 * together become one filter of regular expressions, and "every tag" wins over anything else.
 *
 * What a mirror cannot do is reported as a warning rather than dropped silently: digests in tag lists
 * (mirrors follow tags), cert-dir, and a semver range listed together with tags or a regular expression
 * (a mirror has one filter, whose criteria must all hold, so that image is left for the operator).
 * Anything malformed is an error naming its key path, e.g. `"quay.io".images."coreos/etcd"[1]`.
 */

export interface MirrorDefinition {
  /** The repository here: `NAMESPACE/<upstream repository>`. */
  name: string;
  upstream: {
    /** The registry's origin, e.g. https://registry-1.docker.io. */
    url: string;
    /** The repository there, e.g. library/nginx. */
    repository: string;
    credentials?: { username: string; password: string };
    tlsVerify: boolean;
  };
  filter: TagFilter;
  platforms: PlatformSelection;
}

export interface ImportWarning {
  /** Where in the file, e.g. `"registry.example.com"."cert-dir"`. */
  path: string;
  message: string;
}

export interface SkopeoSyncImport {
  mirrors: MirrorDefinition[];
  warnings: ImportWarning[];
}

export interface SkopeoSyncImportOptions {
  /** Where the mirrors go: each is NAMESPACE/<upstream repository>. */
  namespace: string;
  /** The file's name, for messages. */
  source?: string;
  /** The platforms every mirror keeps (skopeo's --all is a flag, not in the file); default all. */
  platforms?: PlatformSelection;
}

export function importSkopeoSyncFile(text: string, options: SkopeoSyncImportOptions): SkopeoSyncImport {
  const source = options.source ?? 'the skopeo sync file';
  checkNamespace(options.namespace);
  const importer = new SyncFileImporter(options.namespace, options.platforms ?? 'all');
  importer.readFile(readYaml(text, source));
  return importer.result(source);
}

type Path = readonly (string | number)[];
type Mapping = Record<string, unknown>;

const imageSections = ['images', 'images-by-tag-regex', 'images-by-semver'] as const;
const registrySections = [...imageSections, 'credentials', 'tls-verify', 'cert-dir'] as const;

const dockerHubHosts = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

interface Registry {
  path: Path;
  host: string;
  /** A path prefix from the key (`quay.io/coreos`), prepended to every repository. */
  prefix: string;
  connection: Omit<MirrorDefinition['upstream'], 'repository'>;
}

/** What one repository is selected by, across the sections it is listed in. */
interface Selection {
  path: Path;
  allTags: boolean;
  tags: string[];
  regexes: string[];
  semver?: string;
}

class SyncFileImporter {
  readonly #namespace: string;
  readonly #platforms: PlatformSelection;
  readonly #mirrors = new Map<string, { mirror: MirrorDefinition; path: Path }>();
  readonly #warnings: ImportWarning[] = [];
  readonly #errors: string[] = [];

  constructor(namespace: string, platforms: PlatformSelection) {
    this.#namespace = namespace;
    this.#platforms = platforms;
  }

  readFile(root: unknown): void {
    if (root === null || root === undefined) {
      this.#error([], 'the file is empty: expected registries such as "docker.io:" with their images');
      return;
    }
    if (!isMapping(root)) {
      this.#error([], 'expected a mapping of registry host names, such as "docker.io:", to their images');
      return;
    }
    for (const [key, body] of Object.entries(root)) this.#readRegistry(key, body);
  }

  result(source: string): SkopeoSyncImport {
    if (this.#errors.length > 0) {
      throw invalid(`invalid skopeo sync file ${source}:\n  ${this.#errors.join('\n  ')}`);
    }
    return { mirrors: [...this.#mirrors.values()].map(({ mirror }) => mirror), warnings: this.#warnings };
  }

  #readRegistry(key: string, body: unknown): void {
    const path = [key];
    if (body !== null && !isMapping(body)) {
      this.#error(path, `expected a mapping with ${registrySections.join(', ')}`);
      return;
    }
    const fields = body ?? {};
    this.#rejectUnknownKeys(path, fields, registrySections, 'registry');
    const registry = this.#registry(key, fields);
    if (!registry) return;
    const selections = new Map<string, Selection>();
    this.#readTagLists(registry, fields.images, selections);
    this.#readRegexes(registry, fields['images-by-tag-regex'], selections);
    this.#readSemverRanges(registry, fields['images-by-semver'], selections);
    if (selections.size === 0 && !this.#listsImages(fields)) {
      this.#warn(path, 'no images are listed, so nothing is mirrored from this registry');
    }
    for (const [repository, selection] of selections) this.#addMirror(registry, repository, selection);
  }

  #registry(key: string, fields: Mapping): Registry | null {
    const path = [key];
    const [host = '', ...prefix] = key.split('/');
    if (!looksLikeHost(host)) {
      this.#error(
        path,
        'expected a registry host such as quay.io or registry.example.com:5000 (Docker Hub: docker.io)',
      );
      return null;
    }
    const name = host.toLowerCase();
    const tlsVerify = this.#readTlsVerify([key, 'tls-verify'], fields['tls-verify']);
    const credentials = this.#readCredentials([key, 'credentials'], fields.credentials);
    const url = dockerHubHosts.has(name) ? 'https://registry-1.docker.io' : `https://${name}`;
    if (fields['cert-dir'] !== undefined) this.#warnCertDir(key, fields['cert-dir'], name);
    if (!tlsVerify) this.#warnInsecure(key, url);
    const connection = { url, tlsVerify, ...(credentials && { credentials }) };
    return { path, host: name, prefix: prefix.join('/'), connection };
  }

  #readTlsVerify(path: Path, value: unknown): boolean {
    if (value === undefined || value === null) return true;
    const text = typeof value === 'string' ? value.toLowerCase() : '';
    if (text === 'true' || text === 'false') return text === 'true';
    this.#error(path, 'expected true or false');
    return true;
  }

  #readCredentials(path: Path, value: unknown): { username: string; password: string } | undefined {
    if (value === undefined || value === null) return undefined;
    if (!isMapping(value)) {
      this.#error(path, 'expected username and password');
      return undefined;
    }
    this.#rejectUnknownKeys(path, value, ['username', 'password'], 'credentials');
    const { username, password } = value;
    if (username === undefined && password === undefined) return undefined;
    if (typeof username !== 'string' || username === '' || typeof password !== 'string') {
      this.#error(path, 'give both username and password');
      return undefined;
    }
    return { username, password };
  }

  #readTagLists(registry: Registry, value: unknown, selections: Map<string, Selection>): void {
    for (const [image, list] of this.#entries([...registry.path, 'images'], value)) {
      const path = [...registry.path, 'images', image];
      if (list === null || (Array.isArray(list) && list.length === 0)) {
        this.#select(registry, image, path, selections, (s) => (s.allTags = true));
      } else if (Array.isArray(list)) {
        const tags = this.#readTags(path, list);
        if (tags.length > 0) this.#select(registry, image, path, selections, (s) => s.tags.push(...tags));
        else if (list.every(isDigest)) {
          this.#warn(path, 'only digests are listed, so this image is not imported');
        }
      } else {
        this.#error(path, 'expected a list of tags, or [] for every tag');
      }
    }
  }

  #readTags(path: Path, list: unknown[]): string[] {
    const tags: string[] = [];
    list.forEach((item, index) => {
      const itemPath = [...path, index];
      if (typeof item !== 'string') this.#error(itemPath, 'expected a tag');
      else if (isDigest(item)) {
        this.#warn(itemPath, `${item} is a digest: mirrors follow tags, so it is not copied`);
      } else if (!isValidTag(item)) {
        this.#error(itemPath, `"${item}" is not a tag: up to 128 letters, digits, "_", "." and "-"`);
      } else tags.push(item);
    });
    return tags;
  }

  #readRegexes(registry: Registry, value: unknown, selections: Map<string, Selection>): void {
    const section = [...registry.path, 'images-by-tag-regex'];
    for (const [image, pattern] of this.#entries(section, value)) {
      // Go's named groups, (?P<name>…), are (?<name>…) in JavaScript.
      const source = typeof pattern === 'string' ? pattern.replaceAll('(?P<', '(?<') : pattern;
      const filter = this.#checkFilter([...section, image], { regex: [source] });
      if (filter)
        this.#select(registry, image, [...section, image], selections, (s) =>
          s.regexes.push(...filter.regex),
        );
    }
  }

  #readSemverRanges(registry: Registry, value: unknown, selections: Map<string, Selection>): void {
    const section = [...registry.path, 'images-by-semver'];
    for (const [image, range] of this.#entries(section, value)) {
      const filter = this.#checkFilter([...section, image], { semver: range });
      if (filter)
        this.#select(registry, image, [...section, image], selections, (s) => (s.semver = filter.semver));
    }
  }

  /** The filter, or null after reporting why it is not valid. */
  #checkFilter(path: Path, input: unknown): TagFilter | null {
    const result = tagFilterSchema.safeParse(input);
    if (result.success) return result.data;
    for (const issue of result.error.issues) this.#error(path, issue.message);
    return null;
  }

  #select(
    registry: Registry,
    image: string,
    path: Path,
    selections: Map<string, Selection>,
    update: (selection: Selection) => void,
  ): void {
    const repository = this.#repository(registry, image, path);
    if (repository === null) return;
    let selection = selections.get(repository);
    if (!selection) {
      selection = { path, allTags: false, tags: [], regexes: [] };
      selections.set(repository, selection);
    }
    update(selection);
  }

  #repository(registry: Registry, image: string, path: Path): string | null {
    if (/[:@]/.test(image)) {
      this.#error(path, 'expected a repository without a tag or digest; list its tags under it');
      return null;
    }
    const joined = [registry.prefix, image].filter(Boolean).join('/');
    const repository =
      dockerHubHosts.has(registry.host) && !joined.includes('/') ? `library/${joined}` : joined;
    const name = `${this.#namespace}/${repository}`;
    try {
      parseRepositoryName(name);
      return repository;
    } catch (error) {
      this.#error(path, `the mirror name ${name} is not valid: ${(error as Error).message}`);
      return null;
    }
  }

  #addMirror(registry: Registry, repository: string, selection: Selection): void {
    const input = filterInput(selection);
    if (input === null) {
      this.#warn(
        selection.path,
        'listed under images-by-semver and also with tags or a regular expression: a mirror has one filter, ' +
          'whose criteria must all hold, so this image is not imported; create its mirror by hand',
      );
      return;
    }
    const name = `${this.#namespace}/${repository}`;
    const existing = this.#mirrors.get(name);
    if (existing) {
      this.#error(selection.path, `would be the mirror ${name}, like ${formatPath(existing.path)}`);
      return;
    }
    const mirror: MirrorDefinition = {
      name,
      upstream: { ...registry.connection, repository },
      filter: tagFilterSchema.parse(input),
      platforms: this.#platforms,
    };
    this.#mirrors.set(name, { mirror, path: selection.path });
  }

  #entries(path: Path, value: unknown): [string, unknown][] {
    if (value === undefined || value === null) return [];
    if (!isMapping(value)) {
      this.#error(path, 'expected a mapping of repositories, such as "library/nginx:"');
      return [];
    }
    return Object.entries(value);
  }

  #listsImages(fields: Mapping): boolean {
    return imageSections.some((key) => {
      const section = fields[key];
      return isMapping(section) && Object.keys(section).length > 0;
    });
  }

  #rejectUnknownKeys(path: Path, fields: Mapping, known: readonly string[], what: string): void {
    for (const key of Object.keys(fields)) {
      if (!known.includes(key)) {
        this.#error([...path, key], `unknown ${what} key; expected ${known.join(', ')}`);
      }
    }
  }

  #warnCertDir(key: string, value: unknown, host: string): void {
    this.#warn(
      [key, 'cert-dir'],
      `the certificates in ${String(value)} are not imported: the mirrors of ${host} verify its TLS ` +
        'certificate against the system CAs and present no client certificate',
    );
  }

  #warnInsecure(key: string, url: string): void {
    this.#warn(
      [key, 'tls-verify'],
      `TLS certificates are not verified; the mirrors use ${url}: if the registry serves plain HTTP, ` +
        'change their upstream URL to http://',
    );
  }

  #error(path: Path, message: string): void {
    this.#errors.push(path.length > 0 ? `${formatPath(path)}: ${message}` : message);
  }

  #warn(path: Path, message: string): void {
    this.#warnings.push({ path: formatPath(path), message });
  }
}

/** The filter for the union of what skopeo would copy, or null when one filter cannot express it. */
function filterInput(selection: Selection): TagFilterInput | null {
  const { allTags, tags, regexes, semver } = selection;
  if (allTags) return {};
  if (semver !== undefined) return tags.length > 0 || regexes.length > 0 ? null : { semver };
  if (regexes.length === 0) return { include: tags.map(exactTagGlob) };
  if (tags.length === 0) return { regex: regexes };
  return { regex: [...regexes, `^(?:${tags.map(escapeRegex).join('|')})$`] };
}

function readYaml(text: string, source: string): unknown {
  const document = parseDocument(text);
  const [error] = document.errors;
  if (error) throw invalid(`${source} is not valid YAML: ${error.message.split('\n')[0]!.replace(/:$/, '')}`);
  // Keep numbers and booleans as written: the tag 1.10 is not the number 1.1.
  visit(document, {
    Scalar(_, node) {
      if (node.value !== null && typeof node.value !== 'string')
        node.value = node.source ?? String(node.value);
    },
  });
  return document.toJS();
}

function checkNamespace(namespace: string): void {
  try {
    parseRepositoryName(namespace);
  } catch (error) {
    throw invalid(`namespace "${namespace}": ${(error as Error).message}`);
  }
}

function looksLikeHost(host: string): boolean {
  const name = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::\d{1,5})?$/i;
  const ipv6 = /^\[[0-9a-f:.]+\](?::\d{1,5})?$/i;
  if (!name.test(host) && !ipv6.test(host)) return false;
  return /[.:]/.test(host) || host.toLowerCase() === 'localhost';
}

function isDigest(item: unknown): boolean {
  return typeof item === 'string' && item.includes(':');
}

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `"registry.example.com".images."coreos/etcd"[1]`: keys with dots or slashes are quoted. */
function formatPath(path: Path): string {
  return path
    .map((key) => (typeof key === 'number' ? `[${key}]` : /^[\w-]+$/.test(key) ? `.${key}` : `."${key}"`))
    .join('')
    .replace(/^\./, '');
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
