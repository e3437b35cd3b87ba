/**
 * The route allow-list: exact method + path after normalisation. A query string is refused:
 * the replication API takes none, and a credential in a URL ends up in other people's logs.
 */
import type { Validation } from '../config/errors.ts';
import type { Config } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection } from '../pipeline/reasons.ts';
import type { Stage } from '../pipeline/stage.ts';
import { normalisePath, normaliseTarget } from '../core/normalise.ts';

export function createRouteStage(config: Pick<Config, 'routes'>): Stage {
  const methodsByPath = new Map<string, string[]>();
  for (const r of config.routes) {
    const list = methodsByPath.get(r.path) ?? [];
    list.push(r.method);
    methodsByPath.set(r.path, list);
  }
  return {
    name: 'route',
    provides: ['path'],
    run(ctx: RequestContext) {
      const target = normaliseTarget(ctx.req.url ?? '');
      if (!target.ok) throw new Rejection('ROUTE_TARGET_INVALID');
      if (target.query !== undefined) throw new Rejection('ROUTE_QUERY_NOT_ALLOWED');
      const methods = methodsByPath.get(target.path);
      if (!methods) throw new Rejection('ROUTE_NOT_FOUND');
      if (!methods.includes(ctx.req.method ?? '')) throw new Rejection('ROUTE_METHOD_NOT_ALLOWED', undefined, { allow: methods });
      ctx.path = target.path;
    },
  };
}

/** The route part of a guard config: each path in normal form (what the stage compares against), no duplicates. */
export function checkRouteConfig(config: Readonly<Pick<Config, 'routes'>>): Validation {
  const problems: Validation['problems'] = [];
  const routes = new Set<string>();
  config.routes.forEach((route, i) => {
    if (normalisePath(route.path) !== route.path) {
      problems.push({ path: `routes[${i}].path`, message: `"${route.path}" is not a normalised absolute path (no query, "//", ".", "..", or encoded "/" or ".")` });
    }
    const key = `${route.method} ${route.path}`;
    if (routes.has(key)) problems.push({ path: `routes[${i}]`, message: `${key} is listed twice` });
    routes.add(key);
  });
  return { problems, warnings: [] };
}
