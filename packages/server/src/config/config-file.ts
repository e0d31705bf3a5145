// The optional config file (KEYWARD_CONFIG, default ./keyward.config.json):
// the scope catalog, presets, token prefixes, rate limits and secret-scanning partners.
import Type, { type Static } from 'typebox';

const Role = Type.Union([Type.Literal('viewer'), Type.Literal('member'), Type.Literal('admin'), Type.Literal('owner')]);
const Limit = Type.Object(
  { max: Type.Integer({ minimum: 1, maximum: 1_000_000 }), windowSeconds: Type.Integer({ minimum: 1, maximum: 86_400 }) },
  { additionalProperties: false },
);

export const ConfigFileSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    scopes: Type.Optional(
      Type.Array(
        Type.Object({ name: Type.String(), description: Type.String(), minRole: Role }, { additionalProperties: false }),
        { maxItems: 500 },
      ),
    ),
    presets: Type.Optional(
      Type.Array(
        Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }), description: Type.Optional(Type.String()), scopes: Type.Array(Type.String()) }, { additionalProperties: false }),
      ),
    ),
    defaultPreset: Type.Optional(Type.String()),
    tokenPrefixes: Type.Optional(
      Type.Object({ personal: Type.Optional(Type.String()), client: Type.Optional(Type.String()) }, { additionalProperties: false }),
    ),
    /** Prefixes of keys imported from another system, e.g. ["sk_live_"]; KEYWARD_LEGACY_TOKEN_PREFIXES overrides. */
    legacyTokenPrefixes: Type.Optional(Type.Array(Type.String(), { maxItems: 20 })),
    rateLimits: Type.Optional(
      Type.Object(
        { passwordFlow: Type.Optional(Limit), loginPerIp: Type.Optional(Limit), loginPerAccount: Type.Optional(Limit) },
        { additionalProperties: false },
      ),
    ),
    secretScanning: Type.Optional(
      Type.Object(
        {
          // Secrets may sit here (mind the file's permissions) or come from KEYWARD_SECRET_SCANNING_PARTNERS.
          partners: Type.Optional(
            Type.Array(
              Type.Object({ name: Type.String(), secrets: Type.Array(Type.String(), { minItems: 1, maxItems: 2 }) }, { additionalProperties: false }),
              { maxItems: 100 },
            ),
          ),
          toleranceSeconds: Type.Optional(Type.Integer({ minimum: 30, maximum: 3600 })),
          rateLimits: Type.Optional(Type.Object({ perPartner: Type.Optional(Limit), perIp: Type.Optional(Limit) }, { additionalProperties: false })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export type ConfigFile = Static<typeof ConfigFileSchema>;
