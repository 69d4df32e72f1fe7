-- AlterTable
ALTER TABLE "Tenant" ADD COLUMN     "trusted" BOOLEAN NOT NULL DEFAULT false;
