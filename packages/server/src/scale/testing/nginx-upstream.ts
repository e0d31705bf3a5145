// docs/scaling.md's nginx configuration, as the page prints it, pointed at
// replicas started here: the multi-replica nginx test and `npm run bench`
// run exactly what the documentation tells operators to run.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { findBinary, startNginx, type GatewayProcess } from '../../testing/gateway-process.ts';

const DOC = fileURLToPath(new URL('../../../../../docs/scaling.md', import.meta.url));
const DOC_REPLICAS = ['127.0.0.1:8081', '127.0.0.1:8082', '127.0.0.1:8083'];
const DOC_LISTEN = 'listen 443 ssl;';

/** Debian's nginx (/usr/sbin/nginx) or one on PATH; undefined when it is not installed. */
export const nginxBinary = findBinary('nginx');

/**
 * The ```nginx block of docs/scaling.md with its replicas (127.0.0.1:8081–8083)
 * replaced by `replicas` (`host:port`, one to three: the doc's extra `server`
 * lines are dropped) and its TLS `listen` by plain HTTP on 127.0.0.1:`port`.
 */
export function nginxConfigFromDoc(replicas: readonly string[], port: number): string {
  if (replicas.length < 1 || replicas.length > DOC_REPLICAS.length) throw new Error(`the doc's upstream has ${DOC_REPLICAS.length} replicas; got ${replicas.length}`);
  const block = /```nginx\n([\s\S]*?)```/.exec(readFileSync(DOC, 'utf8'))?.[1];
  if (!block) throw new Error('docs/scaling.md has no ```nginx block');
  // The test relies on these; a changed doc must change the test too.
  for (const expected of [...DOC_REPLICAS, DOC_LISTEN]) {
    if (!block.includes(expected)) throw new Error(`the nginx block of docs/scaling.md no longer contains "${expected}"`);
  }
  let config = block.replace(DOC_LISTEN, `listen 127.0.0.1:${port};`);
  DOC_REPLICAS.forEach((docReplica, index) => {
    const replica = replicas[index];
    config = replica === undefined ? config.replace(new RegExp(`^\\s*server ${docReplica.replaceAll('.', '\\.')}[^\\n]*\\n`, 'm'), '') : config.replace(docReplica, replica);
  });
  return config;
}

/** nginx running docs/scaling.md's configuration on 127.0.0.1:`port` in front of `replicas` (base URLs). */
export function startDocNginx(replicas: readonly string[], port: number): Promise<GatewayProcess> {
  if (!nginxBinary) throw new Error('nginx is not installed (apt-get install -y nginx)');
  return startNginx(nginxBinary, nginxConfigFromDoc(replicas.map((url) => new URL(url).host), port), port);
}
