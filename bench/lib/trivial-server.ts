/**
 * Calibration only: a bare node:http server answering every request with a fixed manifest-sized body.
 * What autocannon reaches against it on this machine is the ceiling any single-process Node server
 * (Slipway included) can show in the autocannon rows. Prints its port on stdout.
 */
import { createServer } from 'node:http';

const body = Buffer.alloc(Number(process.argv[2] ?? 600), 'x');
const server = createServer((request, response) => {
  response.writeHead(200, {
    'content-type': 'application/vnd.oci.image.manifest.v1+json',
    'content-length': body.length,
    'docker-content-digest': 'sha256:0000000000000000000000000000000000000000000000000000000000000000',
  });
  response.end(request.method === 'HEAD' ? undefined : body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
