#!/usr/bin/env node
// Slipway runs from its TypeScript sources: Node.js >= 22.18 strips the types itself.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(
    `slipway needs Node.js 22.18 or newer (this is ${process.version}); run it through "npm start" or install Node.js 24 LTS`,
  );
  process.exit(1);
}
await import('../src/cli/main.ts');
