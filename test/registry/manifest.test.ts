import { describe, expect, it } from 'vitest';
import { computeDigest } from '../../src/registry/digest.ts';
import { OciError } from '../../src/registry/errors.ts';
import { parseManifest, referrerArtifactType } from '../../src/registry/manifest.ts';
import { mediaTypes } from '../../src/registry/media-types.ts';

const config = {
  mediaType: 'application/vnd.oci.image.config.v1+json',
  digest: computeDigest(Buffer.from('{}')),
  size: 2,
};
const layer = {
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  digest: computeDigest(Buffer.from('layer')),
  size: 5,
};

function body(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

function invalid(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(OciError);
    expect((error as OciError).code).toBe('MANIFEST_INVALID');
    return (error as OciError).message;
  }
  throw new Error('expected MANIFEST_INVALID');
}

describe('manifest parsing', () => {
  it('lists config and layers of an OCI image as required blobs', () => {
    const parsed = parseManifest(
      body({ schemaVersion: 2, mediaType: mediaTypes.ociManifest, config, layers: [layer] }),
      mediaTypes.ociManifest,
    );
    expect(parsed.kind).toBe('image');
    expect(parsed.blobs.map((b) => b.digest)).toEqual([config.digest, layer.digest]);
  });

  it('takes the media type from the body when Content-Type is absent', () => {
    const parsed = parseManifest(
      body({ schemaVersion: 2, mediaType: mediaTypes.dockerManifest, config, layers: [] }),
      undefined,
    );
    expect(parsed.mediaType).toBe(mediaTypes.dockerManifest);
  });

  it('does not require non-distributable layers to be pushed', () => {
    const foreign = {
      ...layer,
      mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
      digest: computeDigest(Buffer.from('x')),
    };
    const parsed = parseManifest(
      body({ schemaVersion: 2, config, layers: [layer, foreign] }),
      mediaTypes.ociManifest,
    );
    expect(parsed.blobs.map((b) => b.digest)).toEqual([config.digest, layer.digest]);
  });

  it('reads an index with children, subject and artifactType', () => {
    const subject = { mediaType: mediaTypes.ociManifest, digest: computeDigest(Buffer.from('s')), size: 1 };
    const parsed = parseManifest(
      body({
        schemaVersion: 2,
        mediaType: mediaTypes.ociIndex,
        artifactType: 'application/x-sbom',
        subject,
        manifests: [{ ...subject, platform: { os: 'linux', architecture: 'arm64' } }],
      }),
      mediaTypes.ociIndex,
    );
    expect(parsed.kind).toBe('index');
    expect(parsed.blobs).toEqual([]);
    expect(parsed.manifests[0]?.platform).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsed.subject?.digest).toBe(subject.digest);
    expect(parsed.artifactType).toBe('application/x-sbom');
  });

  it('reports the config media type as artifactType when the manifest has none', () => {
    const raw = body({
      schemaVersion: 2,
      config: { ...config, mediaType: 'application/vnd.example.config' },
      layers: [],
    });
    expect(referrerArtifactType(parseManifest(raw, mediaTypes.ociManifest), raw)).toBe(
      'application/vnd.example.config',
    );
  });

  it('refuses malformed manifests with a message that says what is wrong', () => {
    expect(invalid(() => parseManifest(Buffer.from('blablabla'), mediaTypes.ociManifest))).toMatch(
      /not valid JSON/,
    );
    expect(invalid(() => parseManifest(body([1, 2]), mediaTypes.ociManifest))).toMatch(/JSON object/);
    expect(
      invalid(() => parseManifest(body({ schemaVersion: 1, config, layers: [] }), mediaTypes.ociManifest)),
    ).toMatch(/schemaVersion/);
    expect(
      invalid(() => parseManifest(body({ schemaVersion: 2, layers: [] }), mediaTypes.ociManifest)),
    ).toMatch(/config/);
    expect(
      invalid(() =>
        parseManifest(
          body({ schemaVersion: 2, config: { ...config, size: -1 }, layers: [] }),
          mediaTypes.ociManifest,
        ),
      ),
    ).toMatch(/size/);
    expect(
      invalid(() =>
        parseManifest(
          body({ schemaVersion: 2, config: { ...config, digest: 'sha256:nope' }, layers: [] }),
          mediaTypes.ociManifest,
        ),
      ),
    ).toMatch(/digest/);
    expect(
      invalid(() => parseManifest(body({ schemaVersion: 2, config, layers: 'x' }), mediaTypes.ociManifest)),
    ).toMatch(/layers/);
  });

  it('refuses a body whose mediaType contradicts Content-Type', () => {
    const raw = body({ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: [] });
    expect(invalid(() => parseManifest(raw, mediaTypes.ociManifest))).toMatch(/does not match/);
  });

  it('refuses Docker schema 1 and unknown media types', () => {
    expect(invalid(() => parseManifest(body({ schemaVersion: 1 }), mediaTypes.dockerSchema1Signed))).toMatch(
      /schema 1/,
    );
    expect(invalid(() => parseManifest(body({ schemaVersion: 2 }), 'application/x-unknown'))).toMatch(
      /unsupported/,
    );
  });
});
