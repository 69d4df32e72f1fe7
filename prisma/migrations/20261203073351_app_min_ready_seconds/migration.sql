-- AlterTable
ALTER TABLE "App" ADD COLUMN     "minReadySeconds" INTEGER;
