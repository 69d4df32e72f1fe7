-- AlterTable
ALTER TABLE "App" ADD COLUMN     "pidsMax" INTEGER,
ADD COLUMN     "readOnlyRootfs" BOOLEAN NOT NULL DEFAULT false;
