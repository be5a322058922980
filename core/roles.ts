/**
 * Who may call a route. A route declares nothing (GET/HEAD → viewer, anything else → operator)
 * or `config: { role }`:
 *   public   — no token (health, version, the OpenAPI document, the UI's files)
 *   viewer   — read
 *   operator — trigger, clear, signal, pause, cancel
 *   admin    — pools, variables, connections, tokens, config
 */
export const ROLES = ["viewer", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];
export type RouteRole = Role | "public";

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}

/** The role a route requires: its declared one, or the default for its method. */
export function requiredRole(method: string, declared: RouteRole | undefined): RouteRole {
  if (declared) return declared;
  return method === "GET" || method === "HEAD" ? "viewer" : "operator";
}

export function roleAllows(has: Role, needs: RouteRole): boolean {
  return needs === "public" || RANK[has] >= RANK[needs];
}
