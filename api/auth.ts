import type { FastifyInstance } from "fastify";

/**
 * Who may call a route. Every route declares nothing (GET/HEAD → viewer, anything else →
 * operator) or `config: { role: "admin" | "public" | ... }`:
 *   public   — no token (health, version, the OpenAPI document)
 *   viewer   — read
 *   operator — trigger, clear, signal, pause, cancel
 *   admin    — pools, variables, connections, tokens
 */
export type Role = "viewer" | "operator" | "admin";
export type RouteRole = Role | "public";

export const ROLE_RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

declare module "fastify" {
  interface FastifyContextConfig {
    role?: RouteRole;
  }
}

/** The role a route requires: its declared one, or the default for its method. */
export function requiredRole(method: string, declared: RouteRole | undefined): RouteRole {
  if (declared) return declared;
  return method === "GET" || method === "HEAD" ? "viewer" : "operator";
}

export function roleAllows(has: Role, needs: RouteRole): boolean {
  return needs === "public" || ROLE_RANK[has] >= ROLE_RANK[needs];
}

export type AuthInstaller = (app: FastifyInstance) => void;
