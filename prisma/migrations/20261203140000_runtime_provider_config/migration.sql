-- Runtime provider configuration (decision 0023): providers, keys (sealed), models with
-- versioned prices and routes managed over the admin API, layered over the providers
-- file; a version row raised by every change; an audit log of the changes.

-- CreateTable
CREATE TABLE "provider_config_state" (
    "id" INTEGER NOT NULL,
    "version" BIGINT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "provider_config_state_pkey" PRIMARY KEY ("id")
);

INSERT INTO "provider_config_state" ("id", "version") VALUES (1, 0);

-- CreateTable
CREATE TABLE "managed_providers" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "settings" JSONB NOT NULL,
    "disabled" BOOLEAN NOT NULL DEFAULT false,
    "models_found" JSONB,
    "models_checked_at" TIMESTAMPTZ(3),
    "models_error_code" TEXT,
    "models_error_message" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "managed_providers_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "managed_provider_keys" (
    "id" UUID NOT NULL,
    "provider_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "encryption_key_id" TEXT,
    "ciphertext" TEXT,
    "hint" TEXT NOT NULL,
    "priority" INTEGER NOT NULL DEFAULT 1,
    "rpm" INTEGER,
    "tpm" INTEGER,
    "rpd" INTEGER,
    "disabled" BOOLEAN NOT NULL DEFAULT false,
    "check_status" TEXT,
    "check_error_code" TEXT,
    "check_provider_code" TEXT,
    "check_http_status" INTEGER,
    "check_message" TEXT,
    "checked_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "managed_provider_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "managed_models" (
    "id" UUID NOT NULL,
    "provider_id" UUID NOT NULL,
    "model" TEXT NOT NULL,
    "settings" JSONB NOT NULL,
    "current_price_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "managed_models_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "managed_model_prices" (
    "id" UUID NOT NULL,
    "model_id" UUID,
    "provider" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "price" JSONB NOT NULL,
    "created_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "managed_model_prices_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "managed_routes" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "strategy" TEXT NOT NULL,
    "targets" JSONB NOT NULL,
    "disabled" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "managed_routes_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "provider_config_audit" (
    "id" UUID NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "actor" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "entity_type" TEXT NOT NULL,
    "entity_id" TEXT NOT NULL,
    "entity_name" TEXT NOT NULL,
    "before" JSONB,
    "after" JSONB,
    "config_version" BIGINT NOT NULL,

    CONSTRAINT "provider_config_audit_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "managed_providers_name_key" ON "managed_providers"("name");

-- CreateIndex
CREATE UNIQUE INDEX "managed_provider_keys_provider_id_name_key" ON "managed_provider_keys"("provider_id", "name");

-- CreateIndex
CREATE UNIQUE INDEX "managed_models_provider_id_model_key" ON "managed_models"("provider_id", "model");

-- CreateIndex
CREATE INDEX "managed_model_prices_model_id_idx" ON "managed_model_prices"("model_id");

-- CreateIndex
CREATE UNIQUE INDEX "managed_routes_name_key" ON "managed_routes"("name");

-- CreateIndex
CREATE INDEX "provider_config_audit_at_idx" ON "provider_config_audit"("at");

-- AddForeignKey
ALTER TABLE "managed_provider_keys" ADD CONSTRAINT "managed_provider_keys_provider_id_fkey" FOREIGN KEY ("provider_id") REFERENCES "managed_providers"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "managed_models" ADD CONSTRAINT "managed_models_provider_id_fkey" FOREIGN KEY ("provider_id") REFERENCES "managed_providers"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "managed_model_prices" ADD CONSTRAINT "managed_model_prices_model_id_fkey" FOREIGN KEY ("model_id") REFERENCES "managed_models"("id") ON DELETE SET NULL ON UPDATE CASCADE;
