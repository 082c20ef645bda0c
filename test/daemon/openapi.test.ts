import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openApiDocument, ROUTES } from '../../src/daemon/openapi.js';
import { cleanUpAfterEach, daemonHost, startTestDaemon } from './daemon-host.js';

cleanUpAfterEach();

const FILE = fileURLToPath(new URL('../../docs/openapi.json', import.meta.url));

describe('docs/openapi.json', () => {
  it('is the document generated from the zod schemas (UPDATE_OPENAPI=1 writes it)', () => {
    const generated = `${JSON.stringify(openApiDocument(), null, 2)}\n`;
    if (process.env['UPDATE_OPENAPI'] === '1') fs.writeFileSync(FILE, generated);
    expect(fs.readFileSync(FILE, 'utf8')).toBe(generated);
  });

  it('every $ref points at a component of the document', () => {
    const text = JSON.stringify(openApiDocument());
    const doc = JSON.parse(text) as { components: Record<string, Record<string, unknown>> };
    const refs = [...text.matchAll(/"\$ref":"#\/components\/(\w+)\/(\w+)"/g)];
    expect(refs.length).toBeGreaterThan(20);
    for (const [, kind, name] of refs) expect(doc.components[kind!]?.[name!], `${kind}/${name}`).toBeDefined();
    expect(text).not.toMatch(/"\$ref":"#\/(?!components\/)/);
  });

  it('names every route the daemon serves, and the daemon serves every route it names', async () => {
    const { app } = await startTestDaemon(daemonHost());
    const served = app.printRoutes({ commonPrefix: false });
    for (const route of ROUTES) {
      const fastifyPath = route.path.replace(/\{(\w+)\}/g, ':$1');
      expect(app.hasRoute({ method: route.method.toUpperCase() as 'GET', url: fastifyPath }), `${route.method} ${route.path}`).toBe(true);
    }
    const count = (served.match(/\(([A-Z, ]+)\)/g) ?? []).flatMap((methods) => methods.slice(1, -1).split(', ')).filter((m) => m !== 'HEAD').length;
    expect(count).toBe(ROUTES.length);
  });
});
