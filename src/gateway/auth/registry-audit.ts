import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { AuditEntry, AuditLog } from '../../identity/audit.ts';
import { namespaceOf } from '../../identity/names.ts';
import { parseRegistryPath } from '../../registry/http/path.ts';

export interface RegistryAuditOptions {
  audit: AuditLog;
  actorOf: (request: FastifyRequest) => { name: string | null; kind: string } | undefined;
}

/**
 * Records successful manifest pulls (GET; HEADs are only checks), pushes and deletions in the audit
 * log, with who did them and from where. Blob reads are not recorded: a pull is its manifest GET.
 */
const registryAuditPlugin: FastifyPluginAsync<RegistryAuditOptions> = async (app, { audit, actorOf }) => {
  app.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    if (status < 200 || status >= 300 || !request.url.startsWith('/v2/') || request.method === 'HEAD') {
      return done();
    }
    const entry = auditEntryOf(request.method, request.url);
    if (entry) {
      const actor = actorOf(request);
      audit.record({
        ...entry,
        actor: actor?.name ?? null,
        actorKind: actor?.kind ?? null,
        ip: request.ip,
        namespace: namespaceOf(entry.repository!),
      });
    }
    done();
  });
};

function auditEntryOf(method: string, url: string): Omit<AuditEntry, 'actor'> | null {
  let path;
  try {
    path = parseRegistryPath(url);
  } catch {
    return null;
  }
  if (path.kind === 'manifest') {
    const isDigest = path.reference.includes(':');
    const target = path.reference;
    if (method === 'GET') return { kind: 'pull_repo', repository: path.name, target };
    if (method === 'PUT') return { kind: 'push_repo', repository: path.name, target };
    if (method === 'DELETE')
      return { kind: isDigest ? 'delete_manifest' : 'delete_tag', repository: path.name, target };
  }
  if (path.kind === 'blob' && method === 'DELETE')
    return { kind: 'delete_blob', repository: path.name, target: path.digest };
  return null;
}

export default fp(registryAuditPlugin, { name: 'slipway-registry-audit' });
