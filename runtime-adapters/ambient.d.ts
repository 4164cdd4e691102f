/**
 * Minimal local type declarations for the three SQLite modules the drivers use. Only the members we call
 * are declared, so we need neither bun-types, Deno's lib, nor a newer @types/node (ours is Node 20, which
 * has no `node:sqlite`). Referenced with `/// <reference path>` from each driver.
 */

declare module "bun:sqlite" {
  export class Database {
    constructor(path: string, options?: { create?: boolean; readonly?: boolean; strict?: boolean });
    exec(sql: string): void;
    prepare(sql: string): BunStatement;
    close(throwOnError?: boolean): void;
  }
  export interface BunStatement {
    run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
    get(...params: unknown[]): Record<string, unknown> | null;
    all(...params: unknown[]): Record<string, unknown>[];
    finalize(): void;
  }
}

declare module "node:sqlite" {
  export class DatabaseSync {
    constructor(path: string, options?: { open?: boolean; readBigInts?: boolean });
    exec(sql: string): void;
    prepare(sql: string): StatementSync;
    close(): void;
  }
  export interface StatementSync {
    run(...params: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint };
    get(...params: unknown[]): Record<string, unknown> | undefined;
    all(...params: unknown[]): Record<string, unknown>[];
  }
}

declare module "better-sqlite3" {
  interface BetterStatement {
    run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
    get(...params: unknown[]): Record<string, unknown> | undefined;
    all(...params: unknown[]): Record<string, unknown>[];
  }
  interface BetterDatabase {
    exec(sql: string): void;
    prepare(sql: string): BetterStatement;
    close(): void;
  }
  const Database: new (path: string, options?: { timeout?: number }) => BetterDatabase;
  export default Database;
}
