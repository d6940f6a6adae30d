#!/usr/bin/env node
// The `hotshield` command. In a clone of the repository it runs the TypeScript sources
// (Node >= 22.18 strips types; `npx hotshield` there runs on the pinned Node 24), never a
// stale build; the published package has no sources and runs its build (dist/).
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
await import(
  existsSync(source) ? source.href : new URL('../dist/src/cli/main.js', import.meta.url).href
);
